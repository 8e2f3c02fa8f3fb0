"""``evaluate(case, knowledge, as_of=...)``: the whole assessment, pure and deterministic."""

from __future__ import annotations

from datetime import date, timedelta

from b12plan.core.assessment import (
    Assessment,
    LoadingProgress,
    MonitoringItem,
    Regimen,
    ScheduledDose,
)
from b12plan.core.context import Context
from b12plan.core.course import Course, build_course, injections
from b12plan.core.facts import (
    assess_deficiency,
    cause_chronic,
    dietary_only,
    is_anaemic,
    latest,
    neurological_codes,
    results,
    unresolved,
)
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.core.plan import (
    LoadingState,
    build_schedule,
    choose_protocol,
    dose_in_use_mcg,
    first_dose_window,
    loading_state,
    maintenance_interval,
    product_in_use,
    window_after,
)
from b12plan.core.rules import CHECKS


def evaluate(case: Case, knowledge: Knowledge, *, as_of: date) -> Assessment:
    """Assess ``case`` as known on ``as_of`` (later records are left out, as not yet recorded)."""
    ctx = build_context(case.known_on(as_of), knowledge, as_of)
    findings = sorted((f for check in CHECKS for f in check(ctx)), key=lambda f: f.sort_key())
    regimen = _regimen(ctx)
    schedule: tuple[ScheduledDose, ...] = ()
    if ctx.protocol is not None and ctx.next_dose is not None and ctx.interval is not None:
        schedule = build_schedule(
            ctx.protocol,
            phase=ctx.phase,
            loading_doses_given=ctx.course.loading_run,
            next_dose=ctx.next_dose,
            maintenance_days=ctx.interval.final,
            as_of=as_of,
            min_doses=int(knowledge.timing("schedule_min_doses")),
        )
    last_loading = max((s.date for s in schedule if s.phase == "loading"), default=None)
    return Assessment(
        as_of=as_of,
        deficiency=ctx.deficiency.status,
        neurological=bool(ctx.neuro_codes),
        cause_chronic=ctx.chronic,
        phase=ctx.phase,
        regimen=regimen,
        next_dose=ctx.next_dose,
        schedule=schedule,
        monitoring=_monitoring(ctx, last_loading),
        findings=tuple(findings),
        knowledge_version=knowledge.version,
    )


def build_context(case: Case, knowledge: Knowledge, as_of: date) -> Context:
    """Derive every fact the rules need, once."""
    found = results(case, knowledge)
    course = build_course(case, knowledge)
    deficiency = assess_deficiency(found, course.first)
    neuro_codes = neurological_codes(case, knowledge)
    chronic = cause_chronic(case, knowledge)
    given = injections(case, knowledge)
    last_given = (given[-1].dose, given[-1].unit) if given else None
    product = product_in_use(case, tuple(a.product for a in given))
    choice = choose_protocol(
        case,
        knowledge,
        deficiency,
        neurological=bool(neuro_codes),
        chronic=chronic,
        dietary_only=dietary_only(case),
        product=product,
        dose_mcg=dose_in_use_mcg(case, knowledge, last_given),
    )
    protocol = choice.protocol
    interval = window = None
    loading = loading_state(protocol, course, case, neuro_codes, as_of) if protocol else None
    if protocol is not None:
        interval, window = maintenance_interval(protocol, case)

    phase = _phase(
        case,
        course,
        as_of,
        interval.final if interval else None,
        loading.complete if loading else False,
        knowledge,
    )
    next_dose = None
    if protocol is not None and interval is not None and window is not None:
        lifelong = chronic and protocol.lifelong_when_chronic
        if course.last is None:
            next_dose = first_dose_window(protocol, as_of)
        elif phase == "loading":
            stage = protocol.loading_stage_for_dose(course.loading_run + 1)
            spec = stage.window if stage is not None else window
            next_dose = window_after(course.last, spec)
        elif phase == "maintenance" or (phase == "stopped" and lifelong):
            next_dose = window_after(course.last, window)

    hb_start = latest(found, "haemoglobin", on_or_before=course.first)
    mcv_start = latest(found, "mcv", on_or_before=course.first)
    return Context(
        case=case,
        knowledge=knowledge,
        as_of=as_of,
        results=found,
        course=course,
        deficiency=deficiency,
        neuro_codes=neuro_codes,
        neuro_unresolved=unresolved(case, neuro_codes, as_of),
        chronic=chronic,
        choice=choice,
        loading=loading or LoadingState(False, None),
        phase=phase,
        interval=interval,
        maintenance_window=window,
        next_dose=next_dose,
        anaemic_at_start=is_anaemic(hb_start, case, knowledge),
        macrocytic_at_start=None if mcv_start is None else mcv_start.category == "raised",
    )


def _phase(
    case: Case,
    course: Course,
    as_of: date,
    interval_days: int | None,
    loading_complete: bool,
    knowledge: Knowledge,
) -> str:
    """untreated | loading | maintenance | stopped, from the administrations actually given.

    Stopped: the prescription has ended, or no injection for more than ``stopped_factor``
    maintenance intervals (contract v1).
    """
    if course.last is None:
        return "untreated"
    rx = case.prescription
    if rx is not None and rx.end is not None and rx.end <= as_of:
        return "stopped"
    if interval_days is not None:
        limit = knowledge.timing("stopped_factor") * interval_days
        if (as_of - course.last).days > limit:
            return "stopped"
    if course.moved_to_maintenance or loading_complete:
        return "maintenance"
    return "loading"


def _regimen(ctx: Context) -> Regimen | None:
    p = ctx.protocol
    if p is None or ctx.interval is None:
        return None
    return Regimen(
        protocol_id=p.id,
        product=p.product,
        dose=p.dose,
        unit=p.unit,
        route=p.routes[0],
        loading=LoadingProgress(
            doses_given=ctx.course.loading_run,
            doses_planned=p.loading_doses_planned,
            complete=ctx.loading.complete,
        ),
        maintenance_interval_days=ctx.interval.final,
        maintenance_interval=ctx.interval,
        lifelong=ctx.chronic and p.lifelong_when_chronic,
        source=p.source,
    )


def _monitoring(ctx: Context, last_planned_loading: date | None) -> tuple[MonitoringItem, ...]:
    """Outstanding checks, timed from the start of treatment (CKS, NG239, US label)."""
    k = ctx.knowledge
    if not ctx.choice.indicated or ctx.protocol is None:
        return ()
    start = ctx.course.first or (ctx.next_dose.due if ctx.next_dose else None)
    if start is None:
        return ()
    hb = latest(ctx.results, "haemoglobin", on_or_before=ctx.course.first)
    severe = hb is not None and hb.value < k.timing("severe_anaemia_hb_g_per_l")
    wanted: list[str] = []
    if severe:
        wanted.append("potassium")
    if ctx.anaemic_at_start:
        wanted += ["fbc_reticulocytes", "fbc"]
    if ctx.protocol.loading_end == "symptoms_stop_improving" and ctx.phase in (
        "untreated",
        "loading",
    ):
        wanted.append("neuro_loading_review")
    wanted.append(
        "symptom_review_pregnancy" if "pregnancy" in ctx.case.causes else "symptom_review"
    )
    items = []
    for name in wanted:
        spec = k.monitoring_spec(name)
        done_from = start + timedelta(days=spec.satisfied_from_days)
        done = any(r.code in spec.satisfied_by and r.date >= done_from for r in ctx.results) or (
            "symptom" in spec.satisfied_by and any(s.date >= done_from for s in ctx.case.symptoms)
        )
        if not done:
            items.append(
                MonitoringItem(
                    name, start + timedelta(days=spec.after_start_days), spec.reason, spec.source
                )
            )
    if last_planned_loading is not None and ctx.protocol.loading_doses_planned is not None:
        spec = k.monitoring_spec("end_of_loading_review")
        items.append(MonitoringItem(spec.item, last_planned_loading, spec.reason, spec.source))
    return tuple(sorted(items, key=lambda m: (m.due, m.item)))
