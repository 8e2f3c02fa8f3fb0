"""MedicationAdministration: a B12 dose given (date, product, dose, route, who gave it)."""

from __future__ import annotations

from b12plan.fhir.importing import medication
from b12plan.fhir.importing.context import Context, Json, Provenance, ref_key, shown
from b12plan.fhir.outcome import NOT_SUPPORTED, REQUIRED

ADMINISTRATION_STATUSES = ("completed", "in-progress")

_ADMIN_FIELDS = {
    "": "",
    "date": "effectiveDateTime",
    "product": "medicationCodeableConcept",
    "brand": "extension",
    "dose": "dosage.dose.value",
    "unit": "dosage.dose.unit",
    "route": "dosage.route",
    "given_by": "performer[0].actor",
    "site": "dosage.site",
}


def read_administration(ctx: Context, i: int, r: Json, out: Json) -> None:
    if r.get("status") not in ADMINISTRATION_STATUSES:
        return
    concept = medication.concept(ctx, r)
    product = None if concept is None else medication.product_of(ctx, concept)
    if product is None:
        ctx.warn(
            i,
            "medicationCodeableConcept" if concept is not None else "medicationReference",
            f"an administration of something that is not a B12 product b12plan knows"
            f" ({'no code' if concept is None else shown(concept)}); skipped",
            NOT_SUPPORTED,
        )
        return
    if not ctx.owned(i, r):
        return
    path, when = ctx.first_date(
        i, r, ("effectiveDateTime", "effectivePeriod.start"), "an administration"
    )
    dosage = r.get("dosage")
    if dosage is None:
        ctx.err(i, "dosage", "required: the dose and route given", REQUIRED)
        return
    dose = medication.dose(ctx, i, dosage.get("dose"), "dosage.dose")
    route = medication.route(ctx, i, dosage.get("route"), "dosage.route")
    day = ctx.date_of(i, when, path) if path else None
    if dose is None or route is None or day is None:
        return
    rec: Json = {
        "date": day,
        "product": product,
        "dose": dose[0],
        "unit": dose[1],
        "route": route,
    }
    brand = medication.brand(ctx, r)
    if brand is not None:
        rec["brand"] = brand
    who = given_by(ctx, r)
    if who is not None:
        rec["given_by"] = who
    site = dosage.get("site")
    if site is not None:
        text = site.get("text") or next(
            (c.get("display") or c.get("code") for c in site.get("coding", [])), None
        )
        if text:
            rec["site"] = text
    n = len(out["administrations"])
    out["administrations"].append(rec)
    ctx.provenance.append(Provenance(f"administrations[{n}]", i, dict(_ADMIN_FIELDS, date=path)))


def given_by(ctx: Context, r: Json) -> str | None:
    """self (the patient), carer (a RelatedPerson) or clinic (a practitioner)."""
    for performer in r.get("performer", []):
        actor = performer.get("actor", {})
        kind = actor.get("type")
        ref = actor.get("reference")
        if kind is None and isinstance(ref, str):
            kind = ref_key(ref).split("/")[0] if "/" in ref_key(ref) else None
        if kind == "Patient" or (isinstance(ref, str) and ctx.is_patient(ref)):
            return "self"
        if kind == "RelatedPerson":
            return "carer"
        if kind in ("Practitioner", "PractitionerRole", "Organization"):
            return "clinic"
    return None
