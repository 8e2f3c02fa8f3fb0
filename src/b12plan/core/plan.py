"""From facts to a plan: protocol choice, loading progress, phase, dose window, schedule.

Every interval comes from the protocol data; this module only does date arithmetic from the last
actual dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from b12plan.core.assessment import DoseWindow, Limited, ScheduledDose
from b12plan.core.course import Course
from b12plan.core.facts import SETTLED, Deficiency, latest_symptom_status
from b12plan.core.knowledge import DoseWindowSpec, Knowledge, Protocol
from b12plan.core.model import Case

INTERVAL_LIMIT_CODE = "INTERVAL_LONGER_THAN_PROTOCOL"


@dataclass(frozen=True)
class ProtocolChoice:
    protocol: Protocol | None
    indicated: bool
    problem: str = ""  # why no protocol applies although treatment is indicated or given
    product_in_use: str | None = None


def product_in_use(case: Case, course_products: tuple[str, ...]) -> str | None:
    """The current order's product, else the latest injected product."""
    if case.prescription is not None:
        return case.prescription.product
    return course_products[-1] if course_products else None


def dose_in_use_mcg(
    case: Case, knowledge: Knowledge, last_dose: tuple[float, str] | None
) -> float | None:
    if case.prescription is not None:
        return knowledge.formulary.to_mcg(case.prescription.dose, case.prescription.unit)
    if last_dose is not None:
        return knowledge.formulary.to_mcg(*last_dose)
    return None


def choose_protocol(
    case: Case,
    knowledge: Knowledge,
    deficiency: Deficiency,
    *,
    neurological: bool,
    chronic: bool,
    dietary_only: bool,
    product: str | None,
    dose_mcg: float | None,
) -> ProtocolChoice:
    """Pick the cited protocol for this patient, or none.

    Treatment is indicated when deficiency is confirmed or possible, or when an irreversible cause
    is recorded (NG239: lifelong treatment). The product in use decides the protocol family (the
    products are not interchangeable at the same interval, BNF); otherwise the jurisdiction's.
    Within the family, neurological involvement and a dietary-only cause select; a dose range
    breaks a remaining tie, then the jurisdiction default.
    """
    indicated = deficiency.status in ("confirmed", "possible") or chronic
    if not indicated:
        return ProtocolChoice(None, False, product_in_use=product)
    if product is not None:
        family = [p for p in knowledge.protocols if p.product == product]
        if not family:
            return ProtocolChoice(None, True, f"no cited injection protocol for {product}", product)
        local = [p for p in family if p.jurisdiction == case.jurisdiction]
        family = local or family
    else:
        family = [p for p in knowledge.protocols if p.jurisdiction == case.jurisdiction]

    def fits(rule: str, value: bool) -> bool:
        return rule == "any" or (rule == "required") == value

    fitting = [
        p
        for p in family
        if fits(p.neurological, neurological) and fits(p.dietary_only, dietary_only)
    ]
    if dose_mcg is not None:
        by_dose = [
            p
            for p in fitting
            if p.dose_range_mcg is not None
            and p.dose_range_mcg[0] <= dose_mcg <= p.dose_range_mcg[1]
        ]
        fitting = by_dose or fitting
    if len(fitting) > 1:
        fitting = [p for p in fitting if p.jurisdiction_default] or fitting[:1]
    if not fitting:
        return ProtocolChoice(
            None, True, f"no protocol fits {product or case.jurisdiction}", product
        )
    return ProtocolChoice(fitting[0], True, product_in_use=product)


def settled_on(case: Case, neuro_codes: tuple[str, ...], day: date, since: date) -> bool:
    """Neurological symptoms have stopped improving by ``day``: every neurological symptom's latest
    status is stable or resolved, and at least one was assessed after treatment began."""
    if not neuro_codes:
        return False
    assessed_since = any(
        s.date > since and s.code in neuro_codes and s.date <= day for s in case.symptoms
    )
    return assessed_since and all(
        latest_symptom_status(case, c, day) in SETTLED for c in neuro_codes
    )


@dataclass(frozen=True)
class LoadingState:
    complete: bool
    judged_on: date | None  # the date completeness was judged (the switch, or as_of)


def loading_state(
    protocol: Protocol, course: Course, case: Case, neuro_codes: tuple[str, ...], as_of: date
) -> LoadingState:
    """Loading is complete after the protocol's doses; for the neurological protocol, once
    symptoms stopped improving (judged at the switch to longer intervals if there was one)."""
    if course.first is None:
        return LoadingState(False, None)
    judged_on = course.first_maintenance_dose or as_of
    if protocol.loading_end == "doses":
        minimum = protocol.loading_doses_minimum or 0
        return LoadingState(course.loading_run >= minimum, judged_on)
    return LoadingState(settled_on(case, neuro_codes, judged_on, course.first), judged_on)


def maintenance_interval(protocol: Protocol, case: Case) -> tuple[Limited, DoseWindowSpec]:
    """The prescribed maintenance interval if within the protocol's range, else the protocol's.

    A shorter prescribed interval stands (NG239: the interval may be shortened when symptoms
    return); windows scale with it.
    """
    spec = protocol.maintenance.window
    rx = case.prescription
    requested = rx.interval_days if rx is not None and rx.phase == "maintenance" else None
    if requested is None:
        return Limited(None, spec.due_interval_days), spec
    if requested > protocol.maintenance.interval_range_days[1]:
        return Limited(requested, spec.due_interval_days, INTERVAL_LIMIT_CODE), spec
    if requested == spec.due_interval_days:
        return Limited(requested, requested), spec
    scaled = DoseWindowSpec(
        min_interval_days=max(
            1, round(requested * spec.min_interval_days / spec.due_interval_days)
        ),
        due_interval_days=requested,
        overdue_after_days=max(
            requested, round(requested * spec.overdue_after_days / spec.due_interval_days)
        ),
    )
    return Limited(requested, requested), scaled


def window_after(last: date, spec: DoseWindowSpec) -> DoseWindow:
    return DoseWindow(
        earliest=last + timedelta(days=spec.min_interval_days),
        due=last + timedelta(days=spec.due_interval_days),
        overdue_after=last + timedelta(days=spec.overdue_after_days),
    )


def first_dose_window(protocol: Protocol, as_of: date) -> DoseWindow:
    """Untreated with an indication: the first dose is due now, with the loading grace period."""
    spec = protocol.loading[0].window
    grace = spec.overdue_after_days - spec.due_interval_days
    return DoseWindow(as_of, as_of, as_of + timedelta(days=grace))


def build_schedule(
    protocol: Protocol,
    *,
    phase: str,
    loading_doses_given: int,
    next_dose: DoseWindow,
    maintenance_days: int,
    as_of: date,
    min_doses: int,
) -> tuple[ScheduledDose, ...]:
    """Upcoming doses: what is left of loading (each at its stage's spacing), then maintenance.

    An overdue dose is planned for ``as_of``; nothing is planned in the past.
    """
    day = max(next_dose.due, as_of)
    out: list[ScheduledDose] = []
    dose, unit = protocol.dose, protocol.unit
    if phase in ("untreated", "loading"):
        n = loading_doses_given + 1
        while protocol.loading_stage_for_dose(n) is not None:
            out.append(ScheduledDose(day, "loading", dose, unit))
            if protocol.loading_doses_planned is None and len(out) >= min_doses:
                return tuple(out)  # open-ended loading: the end depends on the response
            n += 1
            following = protocol.loading_stage_for_dose(n)
            if following is None:
                day += timedelta(days=maintenance_days)
                break
            day += timedelta(days=following.window.due_interval_days)
    while len(out) < min_doses or not any(s.phase == "maintenance" for s in out):
        out.append(ScheduledDose(day, "maintenance", dose, unit))
        day += timedelta(days=maintenance_days)
    return tuple(out)
