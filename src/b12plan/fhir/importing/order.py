"""MedicationRequest: the one current B12 prescription, and orders of contract medications."""

from __future__ import annotations

import math
from dataclasses import dataclass

from b12plan.fhir.importing import medication
from b12plan.fhir.importing.context import Context, Json, Provenance, extension_value
from b12plan.fhir.outcome import CONFLICT, INCOMPLETE, NOT_SUPPORTED, REQUIRED, VALUE

CURRENT_ORDER_STATUSES = ("active", "on-hold")
PAST_ORDER_STATUSES = ("completed", "stopped")
DRAFT_ORDER_SKIP = ("entered-in-error", "cancelled")
ORDER_SKIP = ("entered-in-error", "cancelled", "draft", "unknown")

PERIOD_DAYS = {"d": 1, "wk": 7, "a": 365}
"""Calendar lengths of FHIR timing units; months depend on the jurisdiction (codes.toml)."""


def _rx_fields(k: int) -> dict[str, str]:
    d = f"dosageInstruction[{k}]"
    return {
        "": "",
        "product": "medicationCodeableConcept",
        "brand": "extension",
        "dose": f"{d}.doseAndRate[0].doseQuantity.value",
        "unit": f"{d}.doseAndRate[0].doseQuantity.unit",
        "route": f"{d}.route",
        "phase": f"{d}.extension",
        "interval_days": f"{d}.timing.repeat.period",
        "start": f"{d}.timing.repeat.boundsPeriod.start",
        "end": f"{d}.timing.repeat.boundsPeriod.end",
    }


@dataclass
class Candidate:
    """A B12 order found in the Bundle, before one is chosen as the prescription."""

    entry: int
    resource: Json
    product: str


@dataclass
class Rx:
    value: Json
    fields: dict[str, str]


def interval_days(ctx: Context, i: int, repeat: Json, path: str) -> int | None:
    """Days between doses from ``period``/``periodUnit``/``frequency`` (e.g. 3 a week -> 2)."""
    period, unit = repeat.get("period"), repeat.get("periodUnit")
    frequency = repeat.get("frequency", 1)
    if period is None or unit is None:
        ctx.err(i, path, "required: a repeat period and periodUnit (how often)", REQUIRED)
        return None
    if unit == "mo":
        per = ctx.codes.days_per_month.get(ctx.jurisdiction or ctx.default_jurisdiction)
    else:
        per = PERIOD_DAYS.get(unit)
    if per is None:
        ctx.err(
            i,
            f"{path}.periodUnit",
            f"periodUnit {unit!r}: b12plan reads intervals of days, weeks, months or years",
            NOT_SUPPORTED,
        )
        return None
    days: int = math.floor(float(period) * per / float(frequency) + 1e-9)
    if days < 1:
        ctx.err(
            i,
            f"{path}.period",
            f"more than one dose a day ({frequency} per {period} {unit}) is no B12 regimen",
            VALUE,
        )
        return None
    return days


def prescription(ctx: Context, c: Candidate) -> Rx | None:
    """The order's current phase: its lowest-``sequence`` dosage not derived by b12plan."""
    i, r = c.entry, c.resource
    for ext in r.get("modifierExtension", []):
        ctx.err(
            i,
            "modifierExtension",
            f"unknown modifier extension {ext.get('url')!r}: the order cannot be read safely",
            NOT_SUPPORTED,
        )
        return None
    current: list[tuple[int, Json]] = []
    for k, d in enumerate(r.get("dosageInstruction", [])):
        urls = [m.get("url") for m in d.get("modifierExtension", [])]
        if ctx.sys.protocol_derived in urls:
            continue  # b12plan's own plan, written on export: not part of the order
        if urls:
            ctx.err(
                i,
                f"dosageInstruction[{k}].modifierExtension",
                f"unknown modifier extension {urls[0]!r}: the dosage cannot be read safely",
                NOT_SUPPORTED,
            )
            return None
        current.append((k, d))
    if not current:
        ctx.err(i, "dosageInstruction", "required: dose, route and timing", REQUIRED)
        return None
    k, d = min(current, key=lambda kd: (kd[1].get("sequence", 0), kd[0]))
    fields = _rx_fields(k)
    at = f"dosageInstruction[{k}]"
    dose_q = (d.get("doseAndRate") or [{}])[0].get("doseQuantity")
    dose = medication.dose(ctx, i, dose_q, f"{at}.doseAndRate[0].doseQuantity")
    route = medication.route(ctx, i, d.get("route"), f"{at}.route")
    repeat = d.get("timing", {}).get("repeat", {})
    interval = interval_days(ctx, i, repeat, f"{at}.timing.repeat")
    bounds = repeat.get("boundsPeriod", {})
    start: str | None = None
    if "start" in bounds:
        start = ctx.date_of(i, bounds["start"], f"{at}.timing.repeat.boundsPeriod.start")
    elif "authoredOn" in r:
        start = ctx.date_of(i, r["authoredOn"], "authoredOn")
        fields["start"] = "authoredOn"
    elif ctx.drafts and ctx.as_of is not None:
        start = ctx.as_of.isoformat()  # a draft order starts when it is signed
    else:
        ctx.err(
            i,
            f"{at}.timing.repeat.boundsPeriod.start",
            "required: when the order starts (or authoredOn)",
            REQUIRED,
        )
    if dose is None or route is None or interval is None or start is None:
        return None
    phase = extension_value(d, ctx.sys.phase, "valueCode")
    if phase is None:
        # Not written by b12plan: the interval decides (contract v1: a gap of
        # maintenance_gap_days or more is a maintenance interval, not loading).
        gap = ctx.knowledge.timing("maintenance_gap_days")
        phase = "maintenance" if interval >= gap else "loading"
    value: Json = {
        "product": c.product,
        "dose": dose[0],
        "unit": dose[1],
        "route": route,
        "phase": phase,
        "interval_days": interval,
        "start": start,
    }
    if "end" in bounds:
        end = ctx.date_of(i, bounds["end"], f"{at}.timing.repeat.boundsPeriod.end")
        if end is None:
            return None
        value["end"] = end
    brand = medication.brand(ctx, r)
    if brand is not None:
        value["brand"] = brand
    return Rx(value, fields)


def choose_prescription(ctx: Context, orders: list[Candidate], out: Json) -> None:
    """One current B12 order; without one, the latest ended order (so a stop is visible)."""
    current = [c for c in orders if c.resource.get("status") in CURRENT_ORDER_STATUSES]
    for extra in current[1:]:
        ctx.err(
            extra.entry,
            "status",
            f"a second current B12 order (the first is entry[{current[0].entry}]):"
            " a case holds one current prescription",
            CONFLICT,
        )
    chosen: tuple[Candidate, Rx] | None = None
    if current:
        if not ctx.owned(current[0].entry, current[0].resource):
            return
        rx = prescription(ctx, current[0])
        if rx is not None:
            chosen = (current[0], rx)
    else:
        past = []
        for c in orders:
            if c.resource.get("status") not in PAST_ORDER_STATUSES:
                continue
            trial = ctx.fork()
            if not trial.owned(c.entry, c.resource):
                continue
            rx = prescription(trial, c)
            if rx is not None and not trial.errors and "end" in rx.value:
                past.append((c, rx))
        if past:
            chosen = max(past, key=lambda cr: (cr[1].value["start"], cr[0].entry))
    if chosen is not None:
        out["prescription"] = chosen[1].value
        ctx.provenance.append(Provenance("prescription", chosen[0].entry, chosen[1].fields))


def order_medication(ctx: Context, i: int, r: Json, code: str, out: Json) -> None:
    """A non-B12 order that the contract lists (folic acid, metformin, ...)."""
    if not ctx.owned(i, r):
        return
    bounds = (
        (r.get("dosageInstruction") or [{}])[0]
        .get("timing", {})
        .get("repeat", {})
        .get("boundsPeriod", {})
    )
    fields = {
        "": "",
        "code": "medicationCodeableConcept",
        "end": "dosageInstruction[0].timing.repeat.boundsPeriod.end",
    }
    if "start" in bounds:
        when, fields["start"] = (
            bounds["start"],
            "dosageInstruction[0].timing.repeat.boundsPeriod.start",
        )
    elif "authoredOn" in r:
        when, fields["start"] = r["authoredOn"], "authoredOn"
    elif ctx.drafts and ctx.as_of is not None:
        when, fields["start"] = ctx.as_of.isoformat(), ""
    else:
        ctx.err(i, "authoredOn", "required: when the medication starts", REQUIRED)
        return
    start = ctx.date_of(i, when, fields["start"])
    if start is None:
        return
    if r.get("status") in PAST_ORDER_STATUSES and "end" not in bounds:
        ctx.warn(
            i,
            "status",
            f"a {r['status']} order with no end date: {code!r} is read as still taken",
            INCOMPLETE,
        )
    medication.add_medication(ctx, i, code, start, bounds.get("end"), fields, out)
