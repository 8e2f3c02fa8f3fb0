"""The pure clinical core: case in, assessment out. Standard library only, no clock, no I/O."""

from b12plan.core.assessment import Assessment, DoseWindow, Finding, Regimen, ScheduledDose
from b12plan.core.evaluate import evaluate
from b12plan.core.knowledge import Knowledge, KnowledgeError
from b12plan.core.model import (
    Administration,
    AdverseEvent,
    Case,
    Decision,
    Medication,
    Observation,
    Patient,
    Prescription,
    PriorTreatment,
    SymptomReport,
)

__all__ = [
    "Administration",
    "AdverseEvent",
    "Assessment",
    "Case",
    "Decision",
    "DoseWindow",
    "Finding",
    "Knowledge",
    "KnowledgeError",
    "Medication",
    "Observation",
    "Patient",
    "Prescription",
    "PriorTreatment",
    "Regimen",
    "ScheduledDose",
    "SymptomReport",
    "evaluate",
]
