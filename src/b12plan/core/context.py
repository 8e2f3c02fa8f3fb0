"""Everything the rules read, computed once per evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from b12plan.core.assessment import DoseWindow, Finding, Limited
from b12plan.core.course import Course
from b12plan.core.facts import Deficiency, Result
from b12plan.core.knowledge import DoseWindowSpec, Knowledge, Protocol
from b12plan.core.model import Case
from b12plan.core.plan import LoadingState, ProtocolChoice


@dataclass(frozen=True)
class Context:
    case: Case
    knowledge: Knowledge
    as_of: date
    results: tuple[Result, ...]
    course: Course
    deficiency: Deficiency
    neuro_codes: tuple[str, ...]  # neurological symptom codes ever recorded
    neuro_unresolved: tuple[str, ...]  # of those, not resolved on as_of
    chronic: bool
    choice: ProtocolChoice
    loading: LoadingState
    phase: str
    interval: Limited | None
    maintenance_window: DoseWindowSpec | None
    next_dose: DoseWindow | None
    anaemic_at_start: bool | None
    macrocytic_at_start: bool | None

    @property
    def protocol(self) -> Protocol | None:
        return self.choice.protocol

    @property
    def in_maintenance(self) -> bool:
        return self.phase == "maintenance"

    def finding(self, code: str, **evidence: Any) -> Finding:
        """A finding with its severity, message and source from the knowledge base."""
        spec = self.knowledge.finding(code)
        shown = {k: _show(v) for k, v in evidence.items()}
        return Finding(
            code=code,
            severity=spec.severity,
            message=spec.message.format(**shown),
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
