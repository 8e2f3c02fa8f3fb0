"""AdverseEvent: a reaction to B12 treatment that the contract names (b12plan's own codes)."""

from __future__ import annotations

from b12plan.fhir.importing.context import Context, Json, Provenance

_EVENT_FIELDS = {"": "", "code": "event", "date": "date"}


def read_adverse_event(ctx: Context, i: int, r: Json, out: Json) -> None:
    if r.get("actuality") != "actual":
        return
    code = next(
        (
            c.get("code")
            for c in r.get("event", {}).get("coding", [])
            if c.get("system") == ctx.sys.adverse_event
        ),
        None,
    )
    if code is None or not ctx.owned(i, r):
        return
    path, when = ctx.first_date(i, r, ("date", "detected", "recordedDate"), "an adverse event")
    day = ctx.date_of(i, when, path) if path else None
    if day is None:
        return
    n = len(out["adverse_events"])
    out["adverse_events"].append({"code": code, "date": day})
    ctx.provenance.append(Provenance(f"adverse_events[{n}]", i, dict(_EVENT_FIELDS, date=path)))
