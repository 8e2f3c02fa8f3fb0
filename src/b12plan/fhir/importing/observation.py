"""Observation: a laboratory result (LOINC or b12plan's analyte code) or a symptom report."""

from __future__ import annotations

from collections.abc import Sequence

from b12plan.fhir.codes import LOINC
from b12plan.fhir.importing.context import Context, Json, Provenance
from b12plan.fhir.outcome import REQUIRED, VALUE

OBSERVATION_STATUSES = ("final", "amended", "corrected", "preliminary")

_OBS_FIELDS = {
    "": "",
    "code": "code",
    "loinc": "code",
    "date": "effectiveDateTime",
    "value": "valueQuantity.value",
    "unit": "valueQuantity.unit",
    "reference_low": "referenceRange[0].low.value",
    "reference_high": "referenceRange[0].high.value",
}
_SYMPTOM_FIELDS = {
    "": "",
    "code": "code",
    "date": "effectiveDateTime",
    "status": "valueCodeableConcept",
}


def read_observation(ctx: Context, i: int, r: Json, out: Json) -> None:
    if r.get("status") not in OBSERVATION_STATUSES:
        return
    coding: list[Json] = r.get("code", {}).get("coding", [])
    symptom = next((c for c in coding if c.get("system") == ctx.sys.symptom), None)
    if symptom is not None:
        read_symptom(ctx, i, r, symptom, out)
        return
    ours = next((c for c in coding if c.get("system") == ctx.sys.analyte), None)
    loincs = [c for c in coding if c.get("system") == LOINC and "code" in c]
    rec: Json = {}
    if ours is not None:
        analyte_code = ours.get("code")
        rec["code"] = analyte_code
        chosen = next((c["code"] for c in loincs if c.get("userSelected")), None)
        if chosen is not None:
            rec["loinc"] = chosen
    else:
        known = [c for c in loincs if ctx.knowledge.analyte_by_loinc(c["code"]) is not None]
        if not known:
            return  # not a result b12plan uses
        rec["loinc"] = known[0]["code"]
        analyte = ctx.knowledge.analyte_by_loinc(known[0]["code"])
        analyte_code = None if analyte is None else analyte.code
    if "dataAbsentReason" in r:
        return  # ordered but no result (e.g. not performed)
    if not ctx.owned(i, r):
        return
    path, when = ctx.first_date(
        i,
        r,
        ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
        "a laboratory result",
    )
    q = r.get("valueQuantity")
    if q is None or "value" not in q:
        ctx.err(
            i, "valueQuantity", "required: a laboratory result needs a value and unit", REQUIRED
        )
        return
    units: Sequence[str] = ()
    if analyte_code is not None:
        known_codes = {a.code for a in ctx.knowledge.analytes}
        if analyte_code in known_codes:
            units = [u.symbol for u in ctx.knowledge.analyte(analyte_code).units]
    if units:
        unit = ctx.unit(i, q, units, "valueQuantity", str(analyte_code))
    else:  # unknown analyte: caseio names the code; pass the unit through unchanged
        unit = q.get("unit") or q.get("code")
    day = ctx.date_of(i, when, path) if path else None
    if unit is None or day is None:
        return
    rec.update({"date": day, "value": q["value"], "unit": unit})
    fields = dict(_OBS_FIELDS, date=path)
    for bound in ("low", "high"):
        rr = (r.get("referenceRange") or [{}])[0].get(bound)
        if rr is None or "value" not in rr:
            continue
        where = f"referenceRange[0].{bound}"
        bound_unit = ctx.unit(i, rr, units or [unit], where, str(analyte_code))
        if bound_unit is not None and ctx.codes.to_ucum(bound_unit) != ctx.codes.to_ucum(unit):
            ctx.err(
                i,
                f"{where}.unit",
                f"unit {bound_unit!r} differs from the result's unit {unit!r}",
                VALUE,
            )
            return
        rec[f"reference_{bound}"] = rr["value"]
    n = len(out["observations"])
    out["observations"].append(rec)
    ctx.provenance.append(Provenance(f"observations[{n}]", i, fields))


def read_symptom(ctx: Context, i: int, r: Json, coding: Json, out: Json) -> None:
    if not ctx.owned(i, r):
        return
    status = next(
        (
            c.get("code")
            for c in r.get("valueCodeableConcept", {}).get("coding", [])
            if c.get("system") == ctx.sys.symptom_status
        ),
        None,
    )
    if status is None:
        ctx.err(
            i,
            "valueCodeableConcept",
            "required: the symptom's status (present, worsening, improving, stable, resolved)",
            REQUIRED,
        )
        return
    path, when = ctx.first_date(
        i, r, ("effectiveDateTime", "effectivePeriod.start", "issued"), "a symptom report"
    )
    day = ctx.date_of(i, when, path) if path else None
    if day is None:
        return
    n = len(out["symptoms"])
    out["symptoms"].append({"code": coding.get("code"), "date": day, "status": status})
    ctx.provenance.append(Provenance(f"symptoms[{n}]", i, dict(_SYMPTOM_FIELDS, date=path)))
