"""What an evaluation concludes: the contract's output shapes as frozen dataclasses.

``Assessment.to_dict()`` is the one place the contract JSON is made, so the CLI, the API, the
CDS Hooks service and the population engine cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
CONTRACT_VERSION = "1.1"

JsonValue = Any


@dataclass(frozen=True)
class Finding:
    """One reason-coded conclusion: a stable code, how serious, why, on which facts, per whom."""

    code: str
    severity: str  # critical | warning | info
    message: str
    evidence: tuple[tuple[str, JsonValue], ...] = ()
    source: str = ""

    def sort_key(self) -> tuple[int, str, str]:
        return (SEVERITY_ORDER[self.severity], self.code, self.message)

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": {k: _jsonable(v) for k, v in self.evidence},
            "source": self.source,
        }


@dataclass(frozen=True)
class Limited:
    """A value a rule tightened: what was asked, what stands, and which limit decided it."""

    requested: int | None
    final: int
    limited_by: str | None = None

    def to_dict(self) -> dict[str, JsonValue]:
        return {"requested": self.requested, "final": self.final, "limited_by": self.limited_by}


@dataclass(frozen=True)
class LoadingProgress:
    doses_given: int
    doses_planned: int | None
    complete: bool


@dataclass(frozen=True)
class Regimen:
    protocol_id: str
    product: str
    dose: float
    unit: str
    route: str
    loading: LoadingProgress
    maintenance_interval_days: int
    lifelong: bool
    source: str
    maintenance_interval: Limited

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "protocol_id": self.protocol_id,
            "product": self.product,
            "dose": _number(self.dose),
            "unit": self.unit,
            "route": self.route,
            "loading": {
                "doses_given": self.loading.doses_given,
                "doses_planned": self.loading.doses_planned,
                "complete": self.loading.complete,
            },
            "maintenance_interval_days": self.maintenance_interval_days,
            "maintenance_interval": self.maintenance_interval.to_dict(),
            "lifelong": self.lifelong,
            "source": self.source,
        }


@dataclass(frozen=True)
class DoseWindow:
    """When the next dose may be given, is due, and counts as overdue."""

    earliest: date
    due: date
    overdue_after: date


@dataclass(frozen=True)
class ScheduledDose:
    date: date
    phase: str
    dose: float
    unit: str


@dataclass(frozen=True)
class MonitoringItem:
    item: str
    due: date
    reason: str
    source: str


@dataclass(frozen=True)
class DoseValidity:
    """One administration judged (contract v1.1): only valid doses count and anchor next_dose."""

    date: date
    product: str
    dose: float
    unit: str
    route: str
    valid: bool
    counts_as: str  # loading | maintenance | oral | none
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, JsonValue]:
        return {
            "date": self.date.isoformat(),
            "product": self.product,
            "dose": _number(self.dose),
            "unit": self.unit,
            "route": self.route,
            "valid": self.valid,
            "counts_as": self.counts_as,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Assessment:
    as_of: date
    deficiency: str
    neurological: bool
    cause_chronic: bool
    phase: str
    regimen: Regimen | None
    next_dose: DoseWindow | None
    schedule: tuple[ScheduledDose, ...]
    monitoring: tuple[MonitoringItem, ...]
    findings: tuple[Finding, ...]
    knowledge_version: str
    dose_validity: tuple[DoseValidity, ...] = ()
    schema_version: int = 1

    @property
    def injections_on_hold(self) -> bool:
        """An allergic reaction not yet cleared for rechallenge (contract v1.1)."""
        return any(
            f.code == "ALLERGIC_REACTION" and dict(f.evidence).get("injections_on_hold") is True
            for f in self.findings
        )

    def why_no_next_dose(self) -> str | None:
        """Why no dose is planned, as a code every channel words the same way (None: one is).

        ``deceased``, ``allergic_hold``, ``oral`` (an oral regimen has no injection plan),
        ``outside_scope_age``, ``confirmatory_test_needed``, ``no_regimen``, or ``not_planned``
        (e.g. the last dose given elsewhere is not recorded, or treatment has stopped).
        """
        if self.next_dose is not None:
            return None
        codes = self.codes()
        if "PATIENT_DECEASED" in codes:
            return "deceased"
        if self.injections_on_hold:
            return "allergic_hold"
        if self.regimen is not None and self.regimen.route == "oral":
            return "oral"
        if "OUTSIDE_SCOPE_AGE" in codes:
            return "outside_scope_age"
        if "CONFIRMATORY_TEST_NEEDED" in codes:
            return "confirmatory_test_needed"
        return "no_regimen" if self.regimen is None else "not_planned"

    def codes(self) -> frozenset[str]:
        return frozenset(f.code for f in self.findings)

    def to_dict(self) -> dict[str, JsonValue]:
        """The contract v1.1 output (plus the optional ``knowledge_version`` extension)."""
        nd = self.next_dose
        return {
            "schema_version": self.schema_version,
            "contract_version": CONTRACT_VERSION,
            "as_of": self.as_of.isoformat(),
            "knowledge_version": self.knowledge_version,
            "deficiency": self.deficiency,
            "neurological": self.neurological,
            "cause_chronic": self.cause_chronic,
            "phase": self.phase,
            "regimen": None if self.regimen is None else self.regimen.to_dict(),
            "next_dose": None
            if nd is None
            else {
                "earliest": nd.earliest.isoformat(),
                "due": nd.due.isoformat(),
                "overdue_after": nd.overdue_after.isoformat(),
            },
            "schedule": [
                {
                    "date": s.date.isoformat(),
                    "phase": s.phase,
                    "dose": _number(s.dose),
                    "unit": s.unit,
                }
                for s in self.schedule
            ],
            "monitoring": [
                {"item": m.item, "due": m.due.isoformat(), "reason": m.reason, "source": m.source}
                for m in self.monitoring
            ],
            "dose_validity": [d.to_dict() for d in self.dose_validity],
            "findings": [f.to_dict() for f in self.findings],
        }


def _number(value: float) -> float | int:
    """1.0 prints as 1: doses and results read as people write them."""
    return int(value) if float(value).is_integer() else value


def _jsonable(value: JsonValue) -> JsonValue:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
