"""The case: what is known about one patient on one evaluation date.

Plain frozen dataclasses, built by an adapter (``b12plan.contract``, the FHIR importer, the store)
after validation. Every value keeps its unit; every record keeps its date. Vocabulary
(codes, units) is checked by the adapter against the knowledge base before a ``Case`` exists, so
core can rely on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any


@dataclass(frozen=True, order=True)
class Quantity:
    """A number with its unit, never separated."""

    value: float
    unit: str


@dataclass(frozen=True)
class Patient:
    id: str | None = None
    sex: str | None = None  # "female" | "male" | "other" | "unknown"
    birth_date: date | None = None
    deceased_date: date | None = None


@dataclass(frozen=True, order=True)
class SymptomReport:
    """One assessment of one symptom on one date; the latest per code is the current state.

    ``reporter`` says who made the assessment: only a clinician's judgement may end neurological
    loading (contract v1.1); a patient's or carer's diary entry asks for a review instead.
    """

    date: date
    code: str
    status: str  # present | worsening | improving | stable | resolved
    reporter: str = "clinician"  # clinician | patient | carer


@dataclass(frozen=True, order=True)
class Observation:
    """A laboratory result; ``code`` is canonical even when the input gave only a LOINC code."""

    date: date
    code: str
    value: float
    unit: str
    reference_low: float | None = None
    reference_high: float | None = None
    loinc: str | None = None


@dataclass(frozen=True, order=True)
class Administration:
    """A dose actually given (or taken, for oral)."""

    date: date
    product: str
    dose: float
    unit: str
    route: str
    brand: str | None = None
    given_by: str | None = None
    site: str | None = None


@dataclass(frozen=True)
class Prescription:
    """The current order."""

    product: str
    dose: float
    unit: str
    route: str
    phase: str  # loading | maintenance
    interval_days: int
    start: date
    end: date | None = None
    brand: str | None = None
    given_by: str | None = None  # who is to give it: clinic | self | carer
    site: str | None = None


@dataclass(frozen=True, order=True)
class Medication:
    start: date
    code: str
    end: date | None = None


@dataclass(frozen=True, order=True)
class AdverseEvent:
    date: date
    code: str


@dataclass(frozen=True, order=True)
class Decision:
    """A clinician's recorded decision: who made it, when and why (contract v1.1)."""

    date: date
    code: str  # neuro_loading_complete | rechallenge_cleared
    by: str
    reason: str


@dataclass(frozen=True)
class PriorTreatment:
    """Treatment before the first recorded dose (transferred in, or records kept elsewhere)."""

    since: date
    loading_completed: bool


@dataclass(frozen=True)
class Case:
    """Everything the assessment may use. Record tuples are kept sorted (date, then content)."""

    as_of: date
    schema_version: int = 1
    jurisdiction: str = "GB"
    patient: Patient = field(default_factory=Patient)
    causes: tuple[str, ...] = ()
    symptoms: tuple[SymptomReport, ...] = ()
    observations: tuple[Observation, ...] = ()
    administrations: tuple[Administration, ...] = ()
    prescription: Prescription | None = None
    medications: tuple[Medication, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    decisions: tuple[Decision, ...] = ()
    prior_treatment: PriorTreatment | None = None

    def __post_init__(self) -> None:
        # Input order carries no meaning: normalise it here so nothing downstream depends on it.
        object.__setattr__(self, "causes", tuple(sorted(set(self.causes))))
        for name in (
            "symptoms",
            "observations",
            "administrations",
            "medications",
            "adverse_events",
            "decisions",
        ):
            object.__setattr__(self, name, tuple(sorted(getattr(self, name), key=_record_key)))

    def known_on(self, as_of: date) -> Case:
        """The case as it was known on ``as_of``: records dated later are left out."""
        rx = self.prescription
        prior = self.prior_treatment
        return Case(
            as_of=as_of,
            schema_version=self.schema_version,
            jurisdiction=self.jurisdiction,
            patient=self.patient,
            causes=self.causes,
            symptoms=tuple(s for s in self.symptoms if s.date <= as_of),
            observations=tuple(o for o in self.observations if o.date <= as_of),
            administrations=tuple(a for a in self.administrations if a.date <= as_of),
            prescription=rx if rx is not None and rx.start <= as_of else None,
            medications=tuple(m for m in self.medications if m.start <= as_of),
            adverse_events=tuple(e for e in self.adverse_events if e.date <= as_of),
            decisions=tuple(d for d in self.decisions if d.date <= as_of),
            prior_treatment=prior if prior is not None and prior.since <= as_of else None,
        )


def _record_key(record: object) -> tuple[tuple[bool, Any], ...]:
    """Date first, then every other field by its own value (numbers as numbers, None first): a
    total order that ignores input order. Of two same-day doses of one product, 2 mg sorts before
    10 mg, as the population SQL orders them."""
    return tuple((value is not None, value) for value in _field_values(record))


def _field_values(record: object) -> tuple[Any, ...]:
    """A record's field values in declaration order (``astuple`` without its deep copy)."""
    return tuple(getattr(record, f.name) for f in fields(record))  # type: ignore[arg-type]
