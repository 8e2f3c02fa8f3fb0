"""The pure clinical core: case in, assessment out. Standard library only, no clock, no I/O."""

from b12plan.core.assessment import Assessment, DoseWindow, Finding, Regimen, ScheduledDose
from b12plan.core.evaluate import evaluate
from b12plan.core.knowledge import Knowledge, KnowledgeError
from b12plan.core.model import (
    Administration,
    AdverseEvent,
    Case,
    Medication,
    Observation,
    Patient,
    Prescription,
    SymptomReport,
)

__all__ = [
    "Administration",
    "AdverseEvent",
    "Assessment",
    "Case",
    "DoseWindow",
    "Finding",
    "Knowledge",
    "KnowledgeError",
    "Medication",
    "Observation",
    "Patient",
    "Prescription",
    "Regimen",
    "ScheduledDose",
    "SymptomReport",
    "evaluate",
]
