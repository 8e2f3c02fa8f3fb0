"""The whole Bundle: each resource to its reader, then the contract's own checks.

Vocabulary checks that the contract already makes (codes, date order) are left to
``b12plan.contract.parse_case``, and its errors are translated back to paths in the Bundle.
The result is the core ``Case`` that parse gives: callers use it as it is (no JSON in between).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import cast

from b12plan.contract import SCHEMA_VERSION, CaseError, parse_case
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case, Medication, Prescription
from b12plan.fhir.codes import CodeMap, Systems
from b12plan.fhir.importing import medication, order
from b12plan.fhir.importing.administration import read_administration
from b12plan.fhir.importing.adverse_event import read_adverse_event
from b12plan.fhir.importing.condition import read_condition
from b12plan.fhir.importing.context import Context, Json, Provenance
from b12plan.fhir.importing.observation import read_observation
from b12plan.fhir.importing.patient import find_patient, read_patient
from b12plan.fhir.importing.structure import validate_bundle
from b12plan.fhir.outcome import (
    BUSINESS_RULE,
    CODE_INVALID,
    INFORMATION,
    INFORMATIONAL,
    REQUIRED,
    BundleError,
    error,
    warning,
)

_READ = frozenset(
    (
        "Patient",
        "Observation",
        "Condition",
        "MedicationAdministration",
        "MedicationStatement",
        "AdverseEvent",
        "MedicationRequest",
        "Medication",  # read through the references that name it
    )
)

_RECORD_LISTS = (
    "causes",
    "symptoms",
    "observations",
    "administrations",
    "medications",
    "adverse_events",
    "decisions",
)


def read_entries(ctx: Context, bundle: Json, as_of: date) -> Json:
    """The contract case dict (not yet validated by the contract)."""
    entries: list[Json] = bundle.get("entry", [])
    ctx.index(entries)
    patient = find_patient(ctx, entries)
    out: Json = {"schema_version": 1, "as_of": as_of.isoformat()}
    if patient is not None:
        details = read_patient(ctx, patient, as_of)
        if details:
            out["patient"] = details
    if ctx.jurisdiction is None:
        ctx.jurisdiction = ctx.default_jurisdiction
    out["jurisdiction"] = ctx.jurisdiction
    for key in _RECORD_LISTS:
        out[key] = []
    orders: list[order.Candidate] = []
    unread: Counter[str] = Counter()
    for i, entry in enumerate(entries):
        r = entry.get("resource")
        if not isinstance(r, dict):
            continue
        kind = r["resourceType"]
        if kind not in _READ:
            unread[kind] += 1
        if kind == "Observation":
            read_observation(ctx, i, r, out)
        elif kind == "Condition":
            read_condition(ctx, i, r, out)
        elif kind == "MedicationAdministration":
            read_administration(ctx, i, r, out)
        elif kind == "MedicationStatement":
            medication.read_statement(ctx, i, r, out)
        elif kind == "AdverseEvent":
            read_adverse_event(ctx, i, r, out)
        elif kind == "MedicationRequest" and r.get("status") not in order.ORDER_SKIP:
            concept = medication.concept(ctx, r)
            product = None if concept is None else medication.product_of(ctx, concept)
            if product is not None:
                orders.append(order.Candidate(i, r, product))
                continue
            code = medication.recognised(ctx, i, r, concept, "an order")
            if code is not None:
                order.order_medication(ctx, i, r, code, out)
        # Patient is read above; other resource types carry nothing the case holds.
    if unread:
        ctx.warnings.append(
            warning(
                "",
                "not read (resource types that carry nothing a B12 case holds; a CarePlan is"
                " b12plan's own derived plan): "
                + ", ".join(f"{kind} x{n}" for kind, n in sorted(unread.items())),
                INFORMATIONAL,
                INFORMATION,
            )
        )
    order.choose_prescription(ctx, orders, out)
    return out


def translate(
    provenance: Sequence[Provenance], errors: Sequence[dict[str, str]]
) -> list[dict[str, str]]:
    """The contract's ``observations[2].unit`` errors as FHIR paths
    (``entry[7].resource.valueQuantity.unit``), through where each record came from."""
    out = []
    for e in errors:
        loc = e["loc"]
        best = None
        for p in provenance:
            if (loc == p.prefix or loc.startswith(p.prefix + ".")) and (
                best is None or len(p.prefix) > len(best.prefix)
            ):
                best = p
        type_ = e["type"]
        kind = (
            REQUIRED
            if type_ == "missing"
            else CODE_INVALID
            if type_.startswith("unknown_")
            else BUSINESS_RULE
        )
        if best is None:
            out.append(error(f"(case) {loc}" if loc else "", e["msg"], kind))
            continue
        rest = loc[len(best.prefix) + 1 :]
        sub = best.fields.get(rest, best.fields.get("", ""))
        base = f"entry[{best.entry}].resource"
        out.append(error(f"{base}.{sub}" if sub else base, e["msg"], kind))
    return out


@dataclass(frozen=True)
class Imported:
    """A Bundle read as a core ``Case``, with what was left out and why.

    ``warnings`` are OperationOutcome issues (``severity`` warning or information) naming each
    skipped item by its path; ``deceased`` is ``Patient.deceased[x]`` as given (a dateTime
    string or ``True``); the case holds it as ``patient.deceased_date``.
    """

    case: Case
    warnings: list[dict[str, str]] = field(default_factory=list)
    deceased: str | bool | None = None


def read_bundle(
    bundle: object,
    *,
    as_of: date,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    patient_id: str | None = None,
    default_jurisdiction: str = "GB",
    partial: bool = True,
    validated: bool = False,
) -> Imported:
    """Validate and read a Bundle into a core ``Case`` (the contract's one parse of it).

    Errors (``BundleError``) are what makes the record unusable: not FHIR, another patient's
    record, an unreadable B12 dose or order, a contract rule broken. What is only left out
    (one unreadable result, an unrecognised medication) is a warning in the result. With
    ``partial=False`` an unreadable result is an error too (CDS Hooks: a card that says the
    record could not be checked, rather than advice from part of it). ``validated=True`` says
    ``bundle`` is ``validate_bundle``'s own output (a caller that checked the Bundle's type
    first): validation is most of an import's time, so it is not done twice.
    """
    data = cast(Json, bundle) if validated else validate_bundle(bundle)
    ctx = Context(
        knowledge,
        codes,
        systems,
        patient_id=patient_id,
        default_jurisdiction=default_jurisdiction,
        partial=partial,
    )
    mapped = read_entries(ctx, data, as_of)
    if ctx.errors:
        raise BundleError(ctx.errors)
    try:
        case = parse_case(mapped, knowledge)
    except CaseError as exc:
        raise BundleError(translate(ctx.provenance, exc.errors)) from None
    return Imported(case, ctx.warnings, ctx.deceased)


@dataclass(frozen=True)
class DraftOrder:
    """One draft order read from a CDS Hooks ``draftOrders`` Bundle, as core records.

    ``prescription`` (a B12 product) or ``medication`` (a contract medication such as folic
    acid) is set; ``resource`` is the MedicationRequest itself (to suggest a replacement).
    """

    entry: int
    resource: Json
    prescription: Prescription | None = None
    medication: Medication | None = None


@dataclass(frozen=True)
class _Draft:
    """A draft as the contract's record, before the contract has checked it."""

    entry: int
    resource: Json
    key: str  # "prescription" or "medications"
    record: Json
    fields: dict[str, str]


def _map_drafts(ctx: Context, data: Json) -> list[_Draft]:
    """The MedicationRequests b12plan can check, in the contract's terms; errors in ``ctx``."""
    entries: list[Json] = data.get("entry", [])
    ctx.index(entries)
    find_patient(ctx, entries)
    found: list[_Draft] = []
    for i, entry in enumerate(entries):
        r = entry.get("resource", {})
        if (
            r.get("resourceType") != "MedicationRequest"
            or r.get("status") in order.DRAFT_ORDER_SKIP
        ):
            continue
        concept = medication.concept(ctx, r)
        if concept is None:
            continue
        product = medication.product_of(ctx, concept)
        if product is not None:
            if not ctx.owned(i, r):
                continue
            rx = order.prescription(ctx, order.Candidate(i, r, product))
            if rx is not None:
                found.append(_Draft(i, r, "prescription", rx.value, rx.fields))
            continue
        code = medication.medication_of(ctx, concept)
        if code is not None:
            holder: Json = {"medications": []}
            order.order_medication(ctx, i, r, code, holder)
            if holder["medications"]:
                fields = ctx.provenance[-1].fields
                found.append(_Draft(i, r, "medications", holder["medications"][0], fields))
    return found


def _draft_context(
    bundle: object,
    *,
    as_of: date,
    jurisdiction: str,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    patient_id: str | None,
) -> tuple[Context, list[_Draft]]:
    data = validate_bundle(bundle)
    ctx = Context(
        knowledge,
        codes,
        systems,
        patient_id=patient_id,
        drafts=True,
        as_of=as_of,
        jurisdiction=jurisdiction,
    )
    return ctx, _map_drafts(ctx, data)


def has_draft_orders(
    bundle: object,
    *,
    as_of: date,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    patient_id: str | None,
) -> bool:
    """Whether any draft concerns b12plan (read or not), found without the patient's record;
    ``BundleError`` only when ``bundle`` is not a FHIR Bundle b12plan reads."""
    ctx, found = _draft_context(
        bundle,
        as_of=as_of,
        jurisdiction="GB",  # months per jurisdiction change an interval, not whether it is ours
        knowledge=knowledge,
        codes=codes,
        systems=systems,
        patient_id=patient_id,
    )
    return bool(found or ctx.errors)


def read_draft_orders(
    bundle: object,
    *,
    as_of: date,
    record: Case,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    patient_id: str | None,
) -> list[DraftOrder]:
    """The MedicationRequests b12plan can check, as core records; unrelated orders are left out.

    Each draft is checked by the contract as a case of its own (the record's jurisdiction and
    birth date, and the one order), so a draft is held to the rules a stored order is;
    ``BundleError`` names the draft's FHIR paths.
    """
    ctx, found = _draft_context(
        bundle,
        as_of=as_of,
        jurisdiction=record.jurisdiction,
        knowledge=knowledge,
        codes=codes,
        systems=systems,
        patient_id=patient_id,
    )
    if ctx.errors:
        raise BundleError(ctx.errors)
    birth = record.patient.birth_date
    out: list[DraftOrder] = []
    problems: list[dict[str, str]] = []
    for draft in found:
        document: Json = {
            "schema_version": SCHEMA_VERSION,
            "as_of": as_of.isoformat(),
            "jurisdiction": record.jurisdiction,
            draft.key: draft.record if draft.key == "prescription" else [draft.record],
        }
        if birth is not None:
            document["patient"] = {"birth_date": birth.isoformat()}
        prefix = draft.key if draft.key == "prescription" else f"{draft.key}[0]"
        try:
            case = parse_case(document, knowledge)
        except CaseError as exc:
            problems += translate([Provenance(prefix, draft.entry, draft.fields)], exc.errors)
            continue
        if case.prescription is not None:
            out.append(DraftOrder(draft.entry, draft.resource, prescription=case.prescription))
        else:
            out.append(DraftOrder(draft.entry, draft.resource, medication=case.medications[0]))
    if problems:
        raise BundleError(problems)
    return out
