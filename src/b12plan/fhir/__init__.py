"""FHIR R4 (``fhir.resources.R4B``) import and export of the contract case.

``case_dict_to_bundle`` writes a ``collection`` Bundle: Patient, Condition per cause, Observation
per result (LOINC, UCUM) and per symptom report, MedicationRequest (loading and maintenance as
``dosageInstruction`` ``sequence`` 1 and 2), MedicationAdministration, MedicationStatement,
AdverseEvent and, from ``b12plan.core.evaluate``, a CarePlan of the planned doses.
``bundle_to_case_dict`` reads such a Bundle, or an EHR's, back into the canonical contract case.
The round trip is the identity on canonical cases (``contract.case_to_dict`` output).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.fhir.codes import CodeMap, Systems, load_code_map, systems
from b12plan.fhir.importing import (
    DraftOrder,
    Imported,
    read_bundle,
    read_draft_orders,
    validate_bundle,
)
from b12plan.fhir.outcome import BundleError, describe, http_status, operation_outcome
from b12plan.fhir.to_fhir import case_to_bundle, every, protocol_order

__all__ = [
    "BundleError",
    "CodeMap",
    "DraftOrder",
    "Imported",
    "Systems",
    "bundle_to_case_dict",
    "case_dict_to_bundle",
    "describe",
    "draft_orders",
    "every",
    "http_status",
    "import_bundle",
    "load_code_map",
    "operation_outcome",
    "order_for_regimen",
    "systems",
    "validate_bundle",
]


def case_dict_to_bundle(
    case: dict[str, Any],
    *,
    bundle_id: str | None = None,
    knowledge: Knowledge,
    include_plan: bool = True,
    patient_resource_id: str | None = None,
) -> dict[str, Any]:
    """A contract case as a FHIR R4 ``collection`` Bundle (JSON).

    The case is validated first (``contract.CaseError`` names the field). With ``include_plan`` the
    case is evaluated as of its ``as_of`` to add the CarePlan and the protocol's maintenance
    phase of a loading order. ``patient_resource_id`` sets ``Patient.id`` (e.g. a server's id).
    """
    parsed = parse_case(case, knowledge)
    assessment = evaluate(parsed, knowledge, as_of=parsed.as_of) if include_plan else None
    return case_to_bundle(
        parsed,
        knowledge,
        load_code_map(),
        systems(),
        assessment=assessment,
        bundle_id=bundle_id,
        patient_resource_id=patient_resource_id,
    )


def import_bundle(
    bundle: object,
    *,
    as_of: date,
    knowledge: Knowledge,
    patient_id: str | None = None,
    default_jurisdiction: str = "GB",
    partial: bool = True,
    validated: bool = False,
) -> Imported:
    """A FHIR R4 Bundle as the canonical contract case, with a warning for everything left out;
    ``BundleError`` lists FHIR paths of what makes the record unusable.

    ``patient_id``, when given, is the patient the record must belong to (e.g. CDS Hooks
    ``context.patientId``): a Patient or a subject reference naming anyone else is an error.
    ``default_jurisdiction`` applies when neither b12plan's extension nor the patient's address
    says which protocols apply (the composition root passes ``B12PLAN_DEFAULT_JURISDICTION``).
    ``partial=False`` makes one unreadable result an error, as ``bundle_to_case_dict`` does.
    ``validated=True``: ``bundle`` is ``validate_bundle``'s output, not validated again.
    """
    return read_bundle(
        bundle,
        as_of=as_of,
        knowledge=knowledge,
        codes=load_code_map(),
        systems=systems(),
        patient_id=patient_id,
        default_jurisdiction=default_jurisdiction,
        partial=partial,
        validated=validated,
    )


def bundle_to_case_dict(
    bundle: object,
    *,
    as_of: date,
    knowledge: Knowledge,
    patient_id: str | None = None,
    default_jurisdiction: str = "GB",
) -> dict[str, Any]:
    """``import_bundle``'s case alone, read strictly (``partial=False``): a caller that shows no
    warnings must not act on a record with a result silently missing."""
    return import_bundle(
        bundle,
        as_of=as_of,
        knowledge=knowledge,
        patient_id=patient_id,
        default_jurisdiction=default_jurisdiction,
        partial=False,
    ).case


def draft_orders(
    bundle: object,
    *,
    as_of: date,
    jurisdiction: str,
    patient_id: str | None = None,
    knowledge: Knowledge,
) -> list[DraftOrder]:
    """The B12 and contract-listed medication orders in a CDS Hooks ``draftOrders`` Bundle."""
    return read_draft_orders(
        bundle,
        as_of=as_of,
        jurisdiction=jurisdiction,
        knowledge=knowledge,
        codes=load_code_map(),
        systems=systems(),
        patient_id=patient_id,
    )


def order_for_regimen(
    draft: dict[str, Any],
    *,
    product: str,
    dose: float,
    unit: str,
    route: str,
    phase: str,
    interval_days: int,
    protocol_id: str,
    knowledge: Knowledge,
) -> dict[str, Any]:
    """A draft MedicationRequest rewritten to a protocol regimen (for a CDS Hooks suggestion)."""
    return protocol_order(
        draft,
        knowledge,
        load_code_map(),
        systems(),
        product=product,
        dose=dose,
        unit=unit,
        route=route,
        phase=phase,
        interval_days=interval_days,
        protocol_id=protocol_id,
    )
