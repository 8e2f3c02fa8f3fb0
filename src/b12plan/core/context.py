"""Everything the rules read, computed once per evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from b12plan.core.assessment import DoseWindow, Finding, Limited
from b12plan.core.course import Course
from b12plan.core.facts import Deficiency, Result
from b12plan.core.knowledge import DoseWindowSpec, Knowledge, Protocol
from b12plan.core.model import Administration, Case, Observation, SymptomReport
from b12plan.core.plan import LoadingState, ProtocolChoice
from b12plan.core.validity import DoseCheck


@dataclass(frozen=True)
class Context:
    case: Case
    knowledge: Knowledge
    as_of: date
    results: tuple[Result, ...]  # plausible results only
    implausible: tuple[Observation, ...]  # left out of every decision
    symptoms: tuple[SymptomReport, ...]  # by date, same-day precedence applied
    doses: tuple[DoseCheck, ...]  # every administration judged (dose_validity)
    course: Course  # valid injections only
    first_treatment: date | None  # first valid injection, or prior treatment's start if earlier
    deficiency: Deficiency
    neuro_codes: tuple[str, ...]  # neurological symptom codes ever recorded
    neuro_unresolved: tuple[str, ...]  # of those, not resolved on as_of
    chronic: bool
    age_years: int | None
    out_of_scope_age: bool
    confirmatory_test_needed: bool
    on_hold: bool  # an allergic reaction not yet cleared for rechallenge
    catching_up: bool  # begun at maintenance recently: the plan completes loading
    loading_counted: int  # valid doses that count towards loading
    choice: ProtocolChoice
    loading: LoadingState
    phase: str
    interval: Limited | None
    maintenance_window: DoseWindowSpec | None
    next_dose: DoseWindow | None
    anaemic_at_start: bool | None
    macrocytic_at_start: bool | None
    dose_in_use: tuple[float, str] | None  # the order's dose, else the latest valid dose

    @property
    def protocol(self) -> Protocol | None:
        return self.choice.protocol

    @property
    def oral(self) -> bool:
        return self.protocol is not None and self.protocol.oral

    @property
    def in_maintenance(self) -> bool:
        return self.phase == "maintenance"

    @property
    def prior_loading_completed(self) -> bool:
        prior = self.case.prior_treatment
        return prior is not None and prior.loading_completed

    @property
    def loading_end(self) -> date | None:
        """The end of loading the results after it are judged from: the last loading dose, or
        the start of treatment elsewhere when loading was completed there."""
        if self.course.last_loading_dose is not None:
            return self.course.last_loading_dose
        prior = self.case.prior_treatment
        return prior.since if prior is not None and prior.loading_completed else None

    def valid_injections(self) -> tuple[Administration, ...]:
        return tuple(d.given for d in self.doses if d.valid and not d.oral)

    def finding(self, code: str, *, variant: str | None = None, **evidence: Any) -> Finding:
        """A finding with its severity, message and source from the knowledge base."""
        spec = self.knowledge.finding(code)
        shown = {k: _show(v) for k, v in evidence.items()}
        return Finding(
            code=code,
            severity=spec.severity,
            message=spec.message_for(variant).format(**shown),
            evidence=tuple(sorted(evidence.items())),
            source=spec.source,
        )


def _show(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return ", ".join(str(_show(v)) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
