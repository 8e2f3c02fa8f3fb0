"""The services b12plan offers over CDS Hooks 2.0, and their discovery document.

Discovery: https://cds-hooks.hl7.org/2.0/#discovery. Prefetch templates ask for the records
``b12plan.fhir`` reads; the Observation query lists the LOINC codes of the knowledge base, so a
new analyte is a data change.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from b12plan.core.knowledge import Knowledge
from b12plan.fhir import load_code_map

PATIENT_TOKEN = "{{context.patientId}}"


class ServiceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    hook: str
    title: str
    description: str
    info_cards_max: int = 0
    info_only_when_treated: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    always_codes: tuple[str, ...] = ()
    suggest_protocol_regimen: tuple[str, ...] = ()


class OverrideReasonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    display: str = Field(min_length=1)


class ServicesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    reviewed_on: Any
    service: tuple[ServiceSpec, ...] = Field(min_length=1)
    override_reason: tuple[OverrideReasonSpec, ...] = ()


@cache
def _services_file() -> ServicesFile:
    text = resources.files(__package__).joinpath("services.toml").read_text(encoding="utf-8")
    return ServicesFile.model_validate(tomllib.loads(text))


def load_services() -> tuple[ServiceSpec, ...]:
    return _services_file().service


def override_reason_system() -> str:
    """b12plan's own code system for the reasons it offers."""
    return f"{load_code_map().base}/CodeSystem/cds-override-reason"


@cache
def override_reasons() -> tuple[dict[str, str], ...]:
    """The override reasons offered on warning and critical cards, as CDS Hooks Codings."""
    system = override_reason_system()
    return tuple(
        {"system": system, "code": r.code, "display": r.display}
        for r in _services_file().override_reason
    )


def service(service_id: str) -> ServiceSpec | None:
    return next((s for s in load_services() if s.id == service_id), None)


def prefetch_templates(knowledge: Knowledge) -> dict[str, str]:
    """What b12plan reads about a patient, as CDS Hooks prefetch queries.

    Only read/search interactions with ``patient`` references and token equality, as the spec's
    prefetch restrictions ask. Symptom reports are b12plan's own survey Observations.
    """
    p = PATIENT_TOKEN
    loinc = ",".join(f"http://loinc.org|{code}" for a in knowledge.analytes for code in a.loinc)
    return {
        "patient": f"Patient/{p}",
        "conditions": f"Condition?patient={p}",
        "observations": f"Observation?patient={p}&code={loinc}",
        "symptoms": f"Observation?patient={p}&category=survey",
        "medicationRequests": f"MedicationRequest?patient={p}",
        "medicationAdministrations": f"MedicationAdministration?patient={p}",
        "medicationStatements": f"MedicationStatement?patient={p}",
        "adverseEvents": f"AdverseEvent?subject=Patient/{p}",
    }


def discovery(knowledge: Knowledge) -> dict[str, Any]:
    """The ``GET /cds-services`` document."""
    templates = prefetch_templates(knowledge)
    return {
        "services": [
            {
                "hook": s.hook,
                "title": s.title,
                "description": s.description,
                "id": s.id,
                "prefetch": templates,
                "usageRequirements": (
                    "Prefetch every key, or send fhirServer (with fhirAuthorization); otherwise"
                    " the patient must be on b12plan's own record under the same id."
                    f" b12plan's own codes are under {load_code_map().base}."
                ),
            }
            for s in load_services()
        ]
    }
