"""Medications in any resource: the concept, the B12 product or contract medication it names,
routes and doses; and MedicationStatement (what the patient takes)."""

from __future__ import annotations

import re

from b12plan.fhir.codes import ATC, RXNORM, SNOMED
from b12plan.fhir.importing.context import Context, Json, Provenance, extension_value, shown
from b12plan.fhir.outcome import CODE_INVALID, CONFLICT, NOT_SUPPORTED, REQUIRED, VALUE

STATEMENT_STATUSES = ("active", "completed", "stopped", "on-hold")

_STATEMENT_FIELDS = {
    "": "",
    "code": "medicationCodeableConcept",
    "start": "effectivePeriod.start",
    "end": "effectivePeriod.end",
}


def concept(ctx: Context, r: Json) -> Json | None:
    """The medication as a CodeableConcept, following a reference to a Medication."""
    if "medicationCodeableConcept" in r:
        found: Json = r["medicationCodeableConcept"]
        return found
    ref = r.get("medicationReference", {})
    target = ref.get("reference")
    medication: Json | None = None
    if isinstance(target, str) and target.startswith("#"):
        medication = next((c for c in r.get("contained", []) if c.get("id") == target[1:]), None)
    elif isinstance(target, str):
        medication = ctx.resolve(target)
    if medication is not None and "code" in medication:
        code: Json = medication["code"]
        return code
    if "display" in ref:
        return {"text": ref["display"]}
    return None


def product_of(ctx: Context, concept: Json) -> str | None:
    """The formulary product: our coding, then ATC, RxNorm, then the product's name in text."""
    codings = concept.get("coding", [])
    for c in codings:
        if c.get("system") == ctx.sys.product and "code" in c:
            code: str = c["code"]
            return code
    products = ctx.knowledge.formulary.products
    for c in codings:
        code = c.get("code", "")
        if c.get("system") == ATC:
            for p in products:
                if p.atc and code == p.atc:
                    return p.id
            for extra in ctx.codes.product_atc:
                if code == extra.atc:
                    return extra.product
        if c.get("system") == RXNORM:
            for p in products:
                if p.rxnorm and code == p.rxnorm:
                    return p.id
    text = " ".join([concept.get("text", "")] + [c.get("display", "") for c in codings]).lower()
    for p in products:
        if p.id in text:
            return p.id
    return None


def medication_of(ctx: Context, concept: Json) -> str | None:
    """A contract ``medications`` code: our coding, the longest matching ATC prefix, an RxNorm
    concept in codes.toml, else an ingredient's name (see ``medication_by_name``)."""
    code, _ = identify_medication(ctx, concept)
    return code


def identify_medication(ctx: Context, concept: Json) -> tuple[str | None, str]:
    """The contract medication and how it was found (``code`` or ``name``)."""
    codings = concept.get("coding", [])
    for c in codings:
        if c.get("system") == ctx.sys.medication and "code" in c:
            code: str = c["code"]
            return code, "code"
    best: tuple[int, str] | None = None
    for c in codings:
        if c.get("system") != ATC:
            continue
        for e in ctx.codes.medication:
            if c.get("code", "").startswith(e.atc) and (best is None or len(e.atc) > best[0]):
                best = (len(e.atc), e.medication)
    if best is not None:
        return best[1], "code"
    for c in codings:
        if c.get("system") == RXNORM:
            hit = next((e for e in ctx.codes.rxnorm if e.code == c.get("code")), None)
            if hit is not None:
                return hit.medication, "code"
    found = medication_by_name(ctx, concept)
    return found, "name" if found is not None else ""


def medication_by_name(ctx: Context, concept: Json) -> str | None:
    """An ingredient name from codes.toml as a whole word in the displays or the text."""
    text = " ".join(
        [concept.get("text", "")] + [c.get("display", "") for c in concept.get("coding", [])]
    ).lower()
    for e in ctx.codes.medication_name:
        if not any(re.search(rf"\b{re.escape(name)}\b", text) for name in e.names):
            continue
        if e.requires_any and not any(
            re.search(rf"\b{re.escape(word)}\b", text) for word in e.requires_any
        ):
            continue
        return e.medication
    return None


def recognised(ctx: Context, i: int, r: Json, concept: Json | None, what: str) -> str | None:
    """The contract medication of a record, with a warning when only its name said so, or when
    nothing did (the record is then skipped)."""
    path = (
        "medicationCodeableConcept" if "medicationCodeableConcept" in r else "medicationReference"
    )
    if concept is None:
        ctx.warn(
            i,
            path,
            f"{what}: no medication code or reference b12plan can follow; skipped",
            NOT_SUPPORTED,
        )
        return None
    code, how = identify_medication(ctx, concept)
    if code is None:
        ctx.warn(
            i,
            path,
            f"{what} not recognised as a B12 product or a medication b12plan uses"
            f" ({shown(concept)}); skipped",
            NOT_SUPPORTED,
        )
    elif how == "name":
        ctx.warn(
            i,
            path,
            f"{what} read as {code!r} from its name, not from a code b12plan lists"
            f" ({shown(concept)}): check it",
            CODE_INVALID,
        )
    return code


def route(ctx: Context, i: int, concept: Json | None, path: str) -> str | None:
    if concept is None:
        ctx.err(i, path, "required: the route (IM, SC, IV or oral)", REQUIRED)
        return None
    codings = concept.get("coding", [])
    for c in codings:
        if c.get("system") == ctx.sys.route and "code" in c:
            code: str = c["code"]
            return code
    for c in codings:
        if c.get("system") == SNOMED:
            for e in ctx.codes.route:
                if c.get("code") == e.code:
                    return e.route
    text = concept.get("text", "").strip().lower()
    for e in ctx.codes.route:
        if text in (e.route.lower(), e.display.lower()):
            return e.route
    ctx.err(
        i,
        path,
        f"cannot read route {concept.get('text') or codings!r} as one of"
        f" {', '.join(e.route for e in ctx.codes.route)}",
        CODE_INVALID,
    )
    return None


def dose(ctx: Context, i: int, q: Json | None, path: str) -> tuple[float, str] | None:
    if q is None or "value" not in q:
        ctx.err(i, path, "required: the dose with its unit", REQUIRED)
        return None
    units = [u.symbol for u in ctx.knowledge.formulary.dose_units]
    unit = ctx.unit(i, q, units, path, "a dose")
    if unit is None:
        return None
    value: float = q["value"]
    return value, unit


def brand(ctx: Context, r: Json) -> str | None:
    value = extension_value(r, ctx.sys.brand, "valueString")
    return value if isinstance(value, str) else None


def read_statement(ctx: Context, i: int, r: Json, out: Json) -> None:
    """A MedicationStatement of a contract medication (PPI, metformin, ...), or b12plan's
    ``prior_treatment`` statement (marked by its extension)."""
    if r.get("status") not in STATEMENT_STATUSES:
        return
    if any(e.get("url") == ctx.sys.loading_completed for e in r.get("extension", [])):
        read_prior_treatment(ctx, i, r, out)
        return
    found = concept(ctx, r)
    if (
        found is not None
        and identify_medication(ctx, found)[0] is None
        and product_of(ctx, found) is not None
    ):
        ctx.warn(
            i,
            "medicationCodeableConcept",
            "a B12 product in a MedicationStatement: b12plan reads doses given from"
            " MedicationAdministration and orders from MedicationRequest; skipped",
            NOT_SUPPORTED,
        )
        return
    code = recognised(ctx, i, r, found, "medication")
    if code is None or not ctx.owned(i, r):
        return
    path, when = ctx.first_date(
        i, r, ("effectivePeriod.start", "effectiveDateTime", "dateAsserted"), "a medication"
    )
    start = ctx.date_of(i, when, path) if path else None
    if start is None:
        return
    add_medication(
        ctx,
        i,
        code,
        start,
        r.get("effectivePeriod", {}).get("end"),
        dict(_STATEMENT_FIELDS, start=path),
        out,
    )


def add_medication(
    ctx: Context, i: int, code: str, start: str, end: object, fields: dict[str, str], out: Json
) -> None:
    rec: Json = {"code": code, "start": start}
    if end is not None:
        end_day = ctx.date_of(i, end, fields["end"])
        if end_day is None:
            return
        rec["end"] = end_day
    n = len(out["medications"])
    out["medications"].append(rec)
    ctx.provenance.append(Provenance(f"medications[{n}]", i, fields))


def read_prior_treatment(ctx: Context, i: int, r: Json, out: Json) -> None:
    """``prior_treatment`` (ADR 0057): read only from a statement carrying the
    ``loading-completed`` extension. An EHR's own B12 statement does not say whether loading was
    completed, so it stays a warning (``read_statement``) rather than a guess."""
    if not ctx.owned(i, r):
        return
    completed = extension_value(r, ctx.sys.loading_completed, "valueBoolean")
    if not isinstance(completed, bool):
        ctx.err(i, "extension", "loading-completed needs valueBoolean (true or false)", VALUE)
        return
    first = next((p.entry for p in ctx.provenance if p.prefix == "prior_treatment"), None)
    if first is not None:
        ctx.err(
            i,
            "",
            f"a second prior-treatment statement (the first is entry[{first}]): a record has one",
            CONFLICT,
        )
        return
    path, when = ctx.first_date(
        i, r, ("effectivePeriod.start", "effectiveDateTime"), "a prior treatment"
    )
    since = ctx.date_of(i, when, path) if path else None
    if since is None:
        return
    out["prior_treatment"] = {"since": since, "loading_completed": completed}
    ctx.provenance.append(
        Provenance("prior_treatment", i, {"": "", "since": path, "loading_completed": "extension"})
    )
