"""FHIR R4 (``fhir.resources.R4B``) import and export of a core ``Case``: one writer, one reader.

``case_to_bundle`` writes a ``collection`` Bundle: Patient, Condition per cause, Observation
per result (LOINC, UCUM) and per symptom report, MedicationRequest (loading and maintenance as
``dosageInstruction`` ``sequence`` 1 and 2), MedicationAdministration, MedicationStatement,
AdverseEvent and, from ``b12plan.core.evaluate``, a CarePlan of the planned doses.
``import_bundle`` reads such a Bundle, or an EHR's, back into a ``Case`` (the contract's parse
runs once, inside it). The round trip is the identity on cases. Callers hand these functions
and each other ``Case`` objects; JSON exists only at the edges (an HTTP body, a file).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.fhir.codes import CodeMap, Systems, load_code_map, systems
from b12plan.fhir.importing import (
    DraftOrder,
    Imported,
    has_draft_orders,
    read_bundle,
    read_draft_orders,
    validate_bundle,
)
from b12plan.fhir.outcome import BundleError, describe, http_status, operation_outcome
from b12plan.fhir.to_fhir import every, protocol_order, write_bundle

__all__ = [
    "BundleError",
    "CodeMap",
    "DraftOrder",
    "Imported",
    "Systems",
    "case_to_bundle",
    "describe",
    "draft_orders",
    "drafts_to_check",
    "every",
    "http_status",
    "import_bundle",
    "load_code_map",
    "operation_outcome",
    "order_for_regimen",
    "systems",
    "validate_bundle",
]


def case_to_bundle(
    case: Case,
    *,
    bundle_id: str | None = None,
    knowledge: Knowledge,
    include_plan: bool = True,
    patient_resource_id: str | None = None,
) -> dict[str, Any]:
    """A case as a FHIR R4 ``collection`` Bundle (JSON).

    With ``include_plan`` the case is evaluated as of its ``as_of`` to add the CarePlan and the
    protocol's maintenance phase of a loading order. ``patient_resource_id`` sets ``Patient.id``
    (e.g. a server's id). Free text FHIR cannot carry is a ``contract.CaseError`` naming the field.
    """
    assessment = evaluate(case, knowledge, as_of=case.as_of) if include_plan else None
    return write_bundle(
        case,
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
    """A FHIR R4 Bundle as a ``Case``, with a warning for everything left out; ``BundleError``
    lists FHIR paths of what makes the record unusable.

    ``patient_id``, when given, is the patient the record must belong to (e.g. CDS Hooks
    ``context.patientId``): a Patient or a subject reference naming anyone else is an error.
    ``default_jurisdiction`` applies when neither b12plan's extension nor the patient's address
    says which protocols apply (the composition root passes ``B12PLAN_DEFAULT_JURISDICTION``).
    ``partial=False`` makes one unreadable result an error: a caller that shows no warnings (CDS
    Hooks) must not act on a record with a result silently missing. ``validated=True``:
    ``bundle`` is ``validate_bundle``'s output, not validated again.
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


def drafts_to_check(
    bundle: object, *, as_of: date, patient_id: str | None = None, knowledge: Knowledge
) -> bool:
    """Whether a CDS Hooks ``draftOrders`` Bundle holds any order b12plan checks (readable or
    not), answered before the patient's record is fetched."""
    return has_draft_orders(
        bundle,
        as_of=as_of,
        knowledge=knowledge,
        codes=load_code_map(),
        systems=systems(),
        patient_id=patient_id,
    )


def draft_orders(
    bundle: object,
    *,
    as_of: date,
    record: Case,
    patient_id: str | None = None,
    knowledge: Knowledge,
) -> list[DraftOrder]:
    """The B12 and contract-listed medication orders in a CDS Hooks ``draftOrders`` Bundle, as
    core records checked by the contract against ``record`` (its jurisdiction, birth date)."""
    return read_draft_orders(
        bundle,
        as_of=as_of,
        record=record,
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
