"""Observation: a laboratory result (LOINC or b12plan's analyte code) or a symptom report."""

from __future__ import annotations

from collections.abc import Sequence

from b12plan.fhir.codes import LOINC, SNOMED
from b12plan.fhir.importing.context import Context, Json, Provenance, ref_key, shown
from b12plan.fhir.outcome import CODE_INVALID, INCOMPLETE, NOT_SUPPORTED, REQUIRED, VALUE

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
    "reporter": "performer",
}
_DECISION_FIELDS = {
    "": "",
    "code": "code",
    "date": "effectiveDateTime",
    "by": "performer[0].display",
    "reason": "note[0].text",
}

_CLINICIANS = frozenset(("Practitioner", "PractitionerRole", "Organization", "CareTeam"))


_VALUE_KINDS = (
    "valueString",
    "valueCodeableConcept",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
)

SKIPPED_RESULT = "this result is skipped, the rest of the record is read"


def read_observation(ctx: Context, i: int, r: Json, out: Json) -> None:
    """A result b12plan uses (by its code or LOINC), else a warning when the code cannot tell.

    A result of another patient, or one naming none, stays an error (wrong-patient hazard);
    anything else unreadable in one result (no value, "QNS", a unit b12plan does not know, no
    date) skips that result with a warning and the rest of the record is read.
    """
    if r.get("status") not in OBSERVATION_STATUSES:
        return
    coding: list[Json] = r.get("code", {}).get("coding", [])
    symptom = next((c for c in coding if c.get("system") == ctx.sys.symptom), None)
    if symptom is not None:
        read_symptom(ctx, i, r, symptom, out)
        return
    decision = next((c for c in coding if c.get("system") == ctx.sys.decision), None)
    if decision is not None:
        read_decision(ctx, i, r, decision, out)
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
        known = [c for c in loincs if _analyte_of(ctx, c["code"]) is not None]
        if not known:
            symptom_code = _symptom_by_snomed(ctx, coding)
            if symptom_code is not None:
                ctx.warn(
                    i,
                    "code",
                    f"the symptom {symptom_code!r} (SNOMED CT) without b12plan's status"
                    " (present, worsening, improving, stable, resolved); skipped",
                    NOT_SUPPORTED,
                )
            elif not loincs:
                ctx.warn(
                    i,
                    "code",
                    f"no LOINC code ({shown(r.get('code', {}))}): b12plan cannot tell whether"
                    " this is a result it uses; skipped",
                    NOT_SUPPORTED,
                )
            return  # a LOINC b12plan does not use (cholesterol, blood pressure): not ours
        analyte_code = _analyte_of(ctx, known[0]["code"])
        if ctx.knowledge.analyte_by_loinc(known[0]["code"]) is not None:
            rec["loinc"] = known[0]["code"]
        else:  # a LOINC codes.toml adds (folate in nmol/L): the contract takes the analyte
            rec["code"] = analyte_code
    if "dataAbsentReason" in r:
        ctx.warn(
            i,
            "dataAbsentReason",
            f"no result ({shown(r['dataAbsentReason'])}); skipped",
            INCOMPLETE,
        )
        return
    if not ctx.owned(i, r):
        return
    mark = len(ctx.errors)
    _read_result(ctx, i, r, rec, analyte_code, out)
    ctx.soften(mark, SKIPPED_RESULT)


def _read_result(
    ctx: Context, i: int, r: Json, rec: Json, analyte_code: str | None, out: Json
) -> None:
    """Date, value, unit and reference range; appends the record only when all are readable."""
    path, when = ctx.first_date(
        i,
        r,
        ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
        "a laboratory result",
    )
    q = r.get("valueQuantity")
    if q is None or "value" not in q:
        other = next((k for k in _VALUE_KINDS if k in r), None)
        if other is not None:
            ctx.err(
                i,
                other,
                f"not a quantity ({other} {_shown_value(r[other])}): a laboratory result"
                " needs a number and unit",
                VALUE,
            )
        else:
            ctx.err(
                i,
                "valueQuantity",
                "required: a laboratory result needs a value and unit",
                REQUIRED,
            )
        return
    units: Sequence[str] = ()
    if analyte_code is not None:
        known_codes = {a.code for a in ctx.knowledge.analytes}
        if analyte_code in known_codes:
            units = [u.symbol for u in ctx.knowledge.analyte(analyte_code).units]
    if units:
        unit = ctx.unit(i, q, units, "valueQuantity", str(analyte_code))
    else:  # unknown analyte: the contract names the code; pass the unit through unchanged
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
        if bound_unit is None:
            return
        if ctx.codes.to_ucum(bound_unit) != ctx.codes.to_ucum(unit):
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


def _symptom_by_snomed(ctx: Context, coding: list[Json]) -> str | None:
    """A symptom an EHR coded in SNOMED CT (codes.toml), which b12plan cannot read a status of."""
    codes = {c.get("code") for c in coding if c.get("system") == SNOMED}
    return next((e.symptom for e in ctx.codes.symptom if e.code in codes), None)


def _analyte_of(ctx: Context, loinc: str) -> str | None:
    """The analyte of a LOINC code: the knowledge base's list, then codes.toml's extensions."""
    analyte = ctx.knowledge.analyte_by_loinc(loinc)
    return analyte.code if analyte is not None else ctx.codes.analyte_for_loinc(loinc)


def _shown_value(value: object) -> str:
    if isinstance(value, dict):
        return shown(value) if "coding" in value or "text" in value else "given"
    return repr(value)


def read_symptom(ctx: Context, i: int, r: Json, coding: Json, out: Json) -> None:
    if not ctx.owned(i, r):
        return
    mark = len(ctx.errors)
    _read_symptom(ctx, i, r, coding, out)
    ctx.soften(mark, "this symptom report is skipped, the rest of the record is read")


def _read_symptom(ctx: Context, i: int, r: Json, coding: Json, out: Json) -> None:
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
    rec: Json = {"code": coding.get("code"), "date": day, "status": status}
    who = reporter(ctx, i, r)
    if who is not None:
        rec["reporter"] = who
    n = len(out["symptoms"])
    out["symptoms"].append(rec)
    ctx.provenance.append(Provenance(f"symptoms[{n}]", i, dict(_SYMPTOM_FIELDS, date=path)))


def reporter(ctx: Context, i: int, r: Json) -> str | None:
    """Who assessed the symptom, from ``performer`` (ADR 0057, 0065).

    The Patient (this Bundle's or any Patient reference) is ``patient``, a RelatedPerson
    ``carer``, a Practitioner, PractitionerRole, Organization or CareTeam ``clinician``; no
    performer is absent (the contract's default, ``clinician``). With several performers the
    patient's or carer's part wins: only a clinician's own assessment may end neurological
    loading. A performer b12plan cannot place is read as ``patient`` with a warning, never as a
    clinician's.
    """
    performers: list[Json] = r.get("performer", [])
    if not performers:
        return None
    kinds = {_performer_kind(ctx, p) for p in performers}
    if "Patient" in kinds:
        return "patient"
    if "RelatedPerson" in kinds:
        return "carer"
    if kinds <= _CLINICIANS:
        return "clinician"
    ctx.warn(
        i,
        "performer",
        "cannot tell who assessed this symptom (no Patient, RelatedPerson or practitioner"
        " performer): read as the patient's report, which never ends neurological loading",
        CODE_INVALID,
    )
    return "patient"


def _performer_kind(ctx: Context, p: Json) -> str | None:
    """The performer's resource type: ``type``, else the resource or path it refers to."""
    kind = p.get("type")
    ref = p.get("reference")
    if isinstance(ref, str):
        if ctx.is_patient(ref):
            return "Patient"
        if kind is None:
            target = ctx.resolve(ref)
            key = ref_key(ref)
            if target is not None:
                kind = target.get("resourceType")
            elif "/" in key:
                kind = key.split("/")[0]
    return kind if isinstance(kind, str) else None


def read_decision(ctx: Context, i: int, r: Json, coding: Json, out: Json) -> None:
    """A clinician's recorded decision (ADR 0057): code, date, who (``performer[0].display``)
    and why (``note[0].text``, required). One that cannot be read is skipped with a warning in
    a partial reading: without it the plan stays the more cautious one (loading continues,
    injections stay on hold)."""
    if not ctx.owned(i, r):
        return
    if r.get("status") == "preliminary":
        ctx.warn(
            i,
            "status",
            "a preliminary decision is not yet a clinician's recorded decision; skipped",
            NOT_SUPPORTED,
        )
        return
    mark = len(ctx.errors)
    _read_decision(ctx, i, r, coding, out)
    ctx.soften(mark, "this decision is skipped, the rest of the record is read")


def _read_decision(ctx: Context, i: int, r: Json, coding: Json, out: Json) -> None:
    path, when = ctx.first_date(
        i, r, ("effectiveDateTime", "effectivePeriod.start", "issued"), "a decision"
    )
    day = ctx.date_of(i, when, path) if path else None
    performers: list[Json] = r.get("performer", [])
    by = next((p["display"] for p in performers if isinstance(p.get("display"), str)), None)
    if by is None:
        ctx.err(i, "performer", "required: who made the decision (performer.display)", REQUIRED)
    notes: list[Json] = r.get("note", [])
    reason = next((n["text"] for n in notes if isinstance(n.get("text"), str)), None)
    if reason is None:
        ctx.err(i, "note", "required: the reason for the decision (note.text)", REQUIRED)
    if day is None or by is None or reason is None:
        return
    n = len(out["decisions"])
    out["decisions"].append({"code": coding.get("code"), "date": day, "by": by, "reason": reason})
    ctx.provenance.append(Provenance(f"decisions[{n}]", i, dict(_DECISION_FIELDS, date=path)))
