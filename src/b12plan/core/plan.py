"""From facts to a plan: protocol choice, loading progress, phase, dose window, schedule.

Every interval comes from the protocol data; this module only does date arithmetic from the last
actual dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from b12plan.core.assessment import DoseWindow, Limited, ScheduledDose
from b12plan.core.course import Course
from b12plan.core.facts import IMPROVED, SETTLED, current_record
from b12plan.core.knowledge import DoseWindowSpec, Knowledge, Protocol
from b12plan.core.model import Case, SymptomReport

INTERVAL_LIMIT_CODE = "INTERVAL_LONGER_THAN_PROTOCOL"


@dataclass(frozen=True)
class ProtocolChoice:
    protocol: Protocol | None
    indicated: bool
    problem: str = ""  # why no protocol applies although treatment is indicated or given
    product_in_use: str | None = None


def choose_protocol(
    case: Case,
    knowledge: Knowledge,
    *,
    indicated: bool,
    oral: bool,
    neurological: bool,
    dietary_only: bool,
    product: str | None,
    dose_mcg: float | None,
) -> ProtocolChoice:
    """Pick the cited protocol for this patient, or none.

    The product in use decides the protocol family (the products are not interchangeable at the
    same interval, BNF); otherwise the jurisdiction's. An oral order only ever maps to an oral
    protocol (contract v1.1 rule 6). Within the injection family, neurological involvement and a
    dietary-only cause select; a dose range breaks a remaining tie, then the jurisdiction default.
    """
    if not indicated:
        return ProtocolChoice(None, False, product_in_use=product)
    kind = "oral" if oral else "injection"
    candidates = [p for p in knowledge.protocols if p.kind == kind]
    if product is not None:
        family = [p for p in candidates if p.product == product]
        if not family:
            return ProtocolChoice(None, True, f"no cited {kind} protocol for {product}", product)
        local = [p for p in family if p.jurisdiction == case.jurisdiction]
        family = local or family
    else:
        family = [p for p in candidates if p.jurisdiction == case.jurisdiction]

    def fits(rule: str, value: bool) -> bool:
        return rule == "any" or (rule == "required") == value

    fitting = (
        family
        if oral
        else [
            p
            for p in family
            if fits(p.neurological, neurological) and fits(p.dietary_only, dietary_only)
        ]
    )
    if dose_mcg is not None and not oral:
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


def _improved_since(
    symptoms: tuple[SymptomReport, ...], neuro_codes: tuple[str, ...], first: date, day: date
) -> date | None:
    """The first improvement (improving or resolved) of a neurological symptom after ``first``."""
    for s in symptoms:
        if s.code in neuro_codes and first < s.date <= day and s.status in IMPROVED:
            return s.date
    return None


def _clinician_settled_on(
    symptoms: tuple[SymptomReport, ...], code: str, day: date, knowledge: Knowledge
) -> date | None:
    """When a clinician judged ``code`` stable or resolved, if that is its current state on ``day``.

    The current status must be stable/resolved, and a clinician's stable/resolved record must
    follow the last record that was not (a patient's or carer's report never ends loading).
    """
    current = current_record(symptoms, code, day)
    if current is None or current.status not in SETTLED:
        return None
    last_unsettled = max(
        (s.date for s in symptoms if s.code == code and s.date <= day and s.status not in SETTLED),
        default=None,
    )
    confirmed = [
        s.date
        for s in symptoms
        if s.code == code
        and s.date <= day
        and s.status in SETTLED
        and knowledge.reporter(s.reporter).ends_neuro_loading
        and (last_unsettled is None or s.date > last_unsettled)
    ]
    return max(confirmed, default=None)


def neuro_loading_end(
    case: Case,
    symptoms: tuple[SymptomReport, ...],
    neuro_codes: tuple[str, ...],
    first: date,
    day: date,
    knowledge: Knowledge,
) -> date | None:
    """The date neurological loading ended by ``day``, or None while it goes on (contract v1.1
    rule 1; BNF, NG239: alternate days until no further improvement, a clinician's judgement).

    (a) A clinician's ``neuro_loading_complete`` decision, on its date; or (b) every neurological
    symptom judged stable or resolved by a clinician after an improvement was recorded, and never
    before ``neuro_loading_min_days`` after the first loading dose (a local choice).
    """
    for d in case.decisions:
        if d.code == "neuro_loading_complete" and first <= d.date <= day:
            return d.date
    if not neuro_codes or _improved_since(symptoms, neuro_codes, first, day) is None:
        return None
    floor = first + timedelta(days=int(knowledge.timing("neuro_loading_min_days")))
    if day < floor:
        return None
    settled = [_clinician_settled_on(symptoms, c, day, knowledge) for c in neuro_codes]
    if any(d is None for d in settled):
        return None
    return max([floor, *(d for d in settled if d is not None)])


def patient_reported_settled(
    symptoms: tuple[SymptomReport, ...],
    neuro_codes: tuple[str, ...],
    day: date,
    knowledge: Knowledge,
) -> SymptomReport | None:
    """Every neurological symptom is stable or resolved now, at least one only on a patient's or
    carer's word: the latest such report (NEURO_REVIEW_DUE), else None."""
    if not neuro_codes:
        return None
    current = [current_record(symptoms, c, day) for c in neuro_codes]
    if any(r is None or r.status not in SETTLED for r in current):
        return None
    unconfirmed = [
        c for c in neuro_codes if _clinician_settled_on(symptoms, c, day, knowledge) is None
    ]
    if not unconfirmed:
        return None
    reports = [
        s
        for s in symptoms
        if s.code in unconfirmed
        and s.date <= day
        and s.status in SETTLED
        and not knowledge.reporter(s.reporter).ends_neuro_loading
    ]
    return reports[-1] if reports else None


def no_improvement_recorded(
    symptoms: tuple[SymptomReport, ...], neuro_codes: tuple[str, ...], first: date, day: date
) -> bool:
    return _improved_since(symptoms, neuro_codes, first, day) is None


@dataclass(frozen=True)
class LoadingState:
    complete: bool
    judged_on: date | None  # the date completeness was judged (the switch, or as_of)


def loading_state(
    protocol: Protocol,
    course: Course,
    case: Case,
    symptoms: tuple[SymptomReport, ...],
    neuro_codes: tuple[str, ...],
    as_of: date,
    knowledge: Knowledge,
    *,
    doses_counted: int,
    catching_up: bool,
) -> LoadingState:
    """Loading is complete after the protocol's doses; for the neurological protocol, when a
    clinician judges that symptoms stopped improving (judged at the switch to longer intervals if
    there was one). Loading completed elsewhere (``prior_treatment``) is complete."""
    prior = case.prior_treatment
    if prior is not None and prior.loading_completed:
        return LoadingState(True, None)
    if protocol.oral or course.first is None:
        return LoadingState(False, None)
    judged_on = as_of if catching_up else (course.first_maintenance_dose or as_of)
    if protocol.loading_end == "doses":
        minimum = protocol.loading_doses_minimum or 0
        return LoadingState(doses_counted >= minimum, judged_on)
    ended = neuro_loading_end(case, symptoms, neuro_codes, course.first, judged_on, knowledge)
    return LoadingState(ended is not None, judged_on)


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


def catch_up_window(last: date, spec: DoseWindowSpec, as_of: date) -> DoseWindow:
    """The next loading dose after a course begun at maintenance (contract v1.1 rule 13): in its
    stage's window after the last valid dose, or due now if that window has passed (a catch-up
    plan is a new plan, not an overdue dose)."""
    window = window_after(last, spec)
    if window.due >= as_of:
        return window
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
