"""Patient: the one patient a Bundle is about, and what the case keeps of them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from b12plan.fhir.importing.context import Context, Json, Provenance, extension_value, ref_key
from b12plan.fhir.outcome import CONFLICT, INFORMATIONAL, NOT_SUPPORTED

_PATIENT_FIELDS = {
    "": "",
    "id": "identifier",
    "sex": "gender",
    "birth_date": "birthDate",
    "deceased_date": "deceasedDateTime",
}


def find_patient(ctx: Context, entries: Sequence[Json]) -> Json | None:
    """The one Patient; a second one is an error (a record mixing patients is a hazard)."""
    found: Json | None = None
    for i, entry in enumerate(entries):
        r = entry.get("resource", {})
        if r.get("resourceType") != "Patient":
            continue
        if ctx.patient_entry is not None:
            ctx.err(
                i,
                "",
                f"a second Patient (the first is entry[{ctx.patient_entry}]):"
                " a Bundle holds one patient's record",
                CONFLICT,
            )
            continue
        ctx.patient_entry, found = i, r
        if "fullUrl" in entry:
            ctx.patient_refs.update({entry["fullUrl"], ref_key(entry["fullUrl"])})
        if "id" in r:
            if ctx.patient_id is not None and r["id"] != ctx.patient_id:
                ctx.err(
                    i,
                    "id",
                    f"Patient {r['id']!r} is not the patient asked about ({ctx.patient_id!r})",
                    CONFLICT,
                )
            ctx.patient_refs.add(f"Patient/{r['id']}")
    if ctx.patient_id is not None:
        ctx.patient_refs.add(f"Patient/{ctx.patient_id}")
    return found


def read_patient(ctx: Context, r: Json, as_of: date) -> Json:
    """The case's ``patient`` object; sets ``ctx.jurisdiction`` from b12plan's extension."""
    assert ctx.patient_entry is not None
    i = ctx.patient_entry
    fields = dict(_PATIENT_FIELDS)
    if "deceasedDateTime" not in r:
        fields["deceased_date"] = "deceasedBoolean"
    ctx.provenance.append(Provenance("patient", i, fields))
    ctx.provenance.append(Provenance("jurisdiction", i, {"": "extension"}))
    out: Json = {}
    ident = next(
        (x.get("value") for x in r.get("identifier", []) if x.get("system") == ctx.sys.patient_id),
        None,
    )
    if ident is not None:
        out["id"] = ident
    elif "id" in r:
        out["id"] = r["id"]
    if "gender" in r:
        out["sex"] = r["gender"]
    if "birthDate" in r:
        birth = ctx.date_of(i, r["birthDate"], "birthDate")
        if birth is not None:
            out["birth_date"] = birth
    ctx.jurisdiction = jurisdiction(ctx, i, r)
    died = deceased(ctx, i, r, as_of)
    if died is not None:
        out["deceased_date"] = died
    return out


def jurisdiction(ctx: Context, i: int, r: Json) -> str:
    """b12plan's own extension (its export), else the country of the current address, else the
    configured default. An address b12plan cannot place is reported, never guessed."""
    own = extension_value(r, ctx.sys.jurisdiction, "valueCode")
    if isinstance(own, str):
        return own
    found: dict[str, str] = {}
    for k, address in enumerate(r.get("address", [])):
        country = address.get("country")
        if address.get("use") == "old" or "end" in address.get("period", {}) or not country:
            continue
        where = f"address[{k}].country"
        mapped = ctx.codes.jurisdiction_for_country(country)
        if mapped is None:
            ctx.warn(
                i,
                where,
                f"country {country!r} is not one b12plan has protocols for: the default"
                f" jurisdiction {ctx.default_jurisdiction} applies",
                NOT_SUPPORTED,
            )
            return ctx.default_jurisdiction
        found.setdefault(mapped, where)
    if len(found) > 1:
        ctx.warn(
            i,
            "address",
            f"current addresses in more than one jurisdiction ({', '.join(sorted(found))}):"
            f" the default jurisdiction {ctx.default_jurisdiction} applies",
            NOT_SUPPORTED,
        )
        return ctx.default_jurisdiction
    if found:
        return next(iter(found))
    return ctx.default_jurisdiction


def deceased(ctx: Context, i: int, r: Json, as_of: date) -> str | None:
    """``Patient.deceased[x]`` as the case's ``deceased_date`` (ADR 0057).

    ``deceasedDateTime`` gives its local calendar date. ``deceasedBoolean: true`` without a date
    is read as ``as_of``, with a warning: the assessment then makes no plan, the safe reading of
    a patient recorded as deceased. ``deceasedBoolean: false`` says nothing. ``ctx.deceased``
    keeps the value as given (``Imported.deceased``).
    """
    if "deceasedDateTime" in r:
        ctx.deceased = str(r["deceasedDateTime"])
        return ctx.date_of(i, r["deceasedDateTime"], "deceasedDateTime")
    if r.get("deceasedBoolean") is not True:
        return None
    ctx.deceased = True
    ctx.warn(
        i,
        "deceasedBoolean",
        f"recorded deceased, date unknown: read as deceased on {as_of.isoformat()} (as_of),"
        " so no plan is made from this record",
        INFORMATIONAL,
    )
    return as_of.isoformat()
