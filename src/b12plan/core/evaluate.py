"""``evaluate(case, knowledge, as_of=...)``: the whole assessment, pure and deterministic."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from b12plan.core.assessment import (
    Assessment,
    DoseValidity,
    LoadingProgress,
    MonitoringItem,
    Regimen,
    ScheduledDose,
)
from b12plan.core.context import Context
from b12plan.core.course import Course, build_course
from b12plan.core.facts import (
    Deficiency,
    age_years,
    assess_deficiency,
    cause_chronic,
    dietary_only,
    implausible,
    is_anaemic,
    latest,
    neurological_codes,
    nitrous_oxide_sources,
    ordered_symptoms,
    results,
    unresolved,
)
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.core.plan import (
    LoadingState,
    build_schedule,
    catch_up_window,
    choose_protocol,
    first_dose_window,
    loading_state,
    maintenance_interval,
    window_after,
)
from b12plan.core.rules import CHECKS, check_patient_deceased, started_at_maintenance
from b12plan.core.validity import DoseCheck, check_doses, not_for_deficiency_use, on_hold


def evaluate(case: Case, knowledge: Knowledge, *, as_of: date) -> Assessment:
    """Assess ``case`` as known on ``as_of`` (later records are left out, as not yet recorded)."""
    ctx = build_context(case.known_on(as_of), knowledge, as_of)
    regimen = _regimen(ctx)
    validity = tuple(_validity(d) for d in ctx.doses)
    deceased = check_patient_deceased(ctx)
    if deceased:
        # Contract v1.1: no plan, no schedule, no monitoring, one finding.
        return Assessment(
            as_of=as_of,
            deficiency=ctx.deficiency.status,
            neurological=bool(ctx.neuro_codes),
            cause_chronic=ctx.chronic,
            phase=ctx.phase,
            regimen=regimen,
            next_dose=None,
            schedule=(),
            monitoring=(),
            findings=deceased,
            knowledge_version=knowledge.version,
            dose_validity=validity,
        )
    findings = sorted((f for check in CHECKS for f in check(ctx)), key=lambda f: f.sort_key())
    schedule: tuple[ScheduledDose, ...] = ()
    if ctx.protocol is not None and ctx.next_dose is not None and ctx.interval is not None:
        schedule = build_schedule(
            ctx.protocol,
            phase=ctx.phase,
            loading_doses_given=ctx.loading_counted,
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
        dose_validity=validity,
    )


def build_context(case: Case, knowledge: Knowledge, as_of: date) -> Context:
    """Derive every fact the rules need, once."""
    symptoms = ordered_symptoms(case, knowledge)
    checked = check_doses(case, knowledge)
    course = build_course(
        tuple(sorted({d.given.date for d in checked if d.valid and not d.oral})), knowledge
    )
    prior = case.prior_treatment
    starts = [d for d in (course.first, prior.since if prior else None) if d is not None]
    first_treatment = min(starts, default=None)
    found = results(case, knowledge)
    deficiency = assess_deficiency(found, first_treatment)
    neuro_codes = neurological_codes(case, knowledge)
    neuro_unresolved = unresolved(symptoms, neuro_codes, as_of)
    if (
        nitrous_oxide_sources(case)
        and neuro_unresolved
        and deficiency.status in ("unlikely", "unknown")
    ):
        # NG239: nitrous oxide causes functional deficiency with a normal total B12; with
        # neurological symptoms, treat now without waiting for results.
        deficiency = Deficiency("possible", deficiency.basis)
    chronic = cause_chronic(case, knowledge)
    age = age_years(case.patient.birth_date, as_of)
    out_of_scope = age is not None and age < knowledge.timing("minimum_age_years")
    valid = [d.given for d in checked if d.valid]
    # The product in use is what is being given, valid or not (an injected methylcobalamin has
    # no injection protocol: say so rather than plan another product); only another use of the
    # product (the cyanide antidote) is not "in use" for deficiency.
    in_use = [d.given for d in checked if d.oral or not _other_use(d, knowledge)]
    hb_now = latest(found, "haemoglobin", on_or_before=course.first)
    confirmatory = (
        not valid
        and prior is None
        and deficiency.status == "possible"
        and not any(r.code in ("mma", "b12_active") for r in deficiency.basis)
        and not neuro_codes
        and not chronic
        and is_anaemic(hb_now, case, knowledge) is not True
    )
    indicated = (
        deficiency.status in ("confirmed", "possible") or chronic or prior is not None
    ) and not (out_of_scope or confirmatory)
    rx = case.prescription
    oral = rx.route == "oral" if rx is not None else bool(in_use) and in_use[-1].route == "oral"
    in_kind = [a for a in in_use if (a.route == "oral") == oral]
    product = rx.product if rx is not None else (in_kind[-1].product if in_kind else None)
    dose_in_use = (
        (rx.dose, rx.unit)
        if rx is not None
        else (in_kind[-1].dose, in_kind[-1].unit)
        if in_kind
        else None
    )
    choice = choose_protocol(
        case,
        knowledge,
        indicated=indicated,
        oral=oral,
        neurological=bool(neuro_codes),
        dietary_only=dietary_only(case),
        product=product,
        dose_mcg=None if dose_in_use is None else knowledge.formulary.to_mcg(*dose_in_use),
    )
    protocol = choice.protocol
    prior_completed = prior is not None and prior.loading_completed
    begun_at_maintenance = (
        protocol is not None
        and not protocol.oral
        and not prior_completed
        and (deficiency.status != "unlikely" or chronic)
        and started_at_maintenance(course)
    )
    catching_up = (
        begun_at_maintenance
        and course.first is not None
        and (as_of - course.first).days < knowledge.timing("catch_up_window_days")
    )
    if prior_completed:
        course = dataclasses.replace(course, loading_run=0)
        counted = 0
    else:
        counted = len(course.dates) if catching_up else course.loading_run
    interval = window = None
    loading = LoadingState(False, None)
    if protocol is not None:
        interval, window = maintenance_interval(protocol, case)
        loading = loading_state(
            protocol,
            course,
            case,
            symptoms,
            neuro_codes,
            as_of,
            knowledge,
            doses_counted=counted,
            catching_up=catching_up,
        )
    phase = _phase(
        case,
        course,
        as_of,
        interval.final if interval else None,
        knowledge,
        loading_complete=loading.complete,
        catching_up=catching_up,
        prior_completed=prior_completed,
        oral=protocol is not None and protocol.oral,
        oral_dose_given=any(d.valid and d.oral for d in checked),
    )
    held = on_hold(case, knowledge, as_of, strictly_after=False)
    next_dose = None
    if (
        protocol is not None
        and not protocol.oral
        and not held
        and interval is not None
        and window is not None
    ):
        lifelong = chronic and protocol.lifelong_when_chronic
        if course.last is None:
            next_dose = None if prior_completed else first_dose_window(protocol, as_of)
        elif phase == "loading":
            stage = protocol.loading_stage_for_dose(counted + 1)
            spec = stage.window if stage is not None else window
            next_dose = (
                catch_up_window(course.last, spec, as_of)
                if catching_up
                else window_after(course.last, spec)
            )
        elif phase == "maintenance" or (phase == "stopped" and lifelong):
            next_dose = window_after(course.last, window)

    mcv_start = latest(found, "mcv", on_or_before=course.first)
    return Context(
        case=case,
        knowledge=knowledge,
        as_of=as_of,
        results=found,
        implausible=implausible(case, knowledge),
        symptoms=symptoms,
        doses=_counts_as(checked, course, prior_completed=prior_completed, catching_up=catching_up),
        course=course,
        first_treatment=first_treatment,
        deficiency=deficiency,
        neuro_codes=neuro_codes,
        neuro_unresolved=neuro_unresolved,
        chronic=chronic,
        age_years=age,
        out_of_scope_age=out_of_scope,
        confirmatory_test_needed=confirmatory,
        on_hold=held,
        catching_up=catching_up,
        loading_counted=counted,
        choice=choice,
        loading=loading,
        phase=phase,
        interval=interval,
        maintenance_window=window,
        next_dose=next_dose,
        anaemic_at_start=is_anaemic(hb_now, case, knowledge),
        macrocytic_at_start=None if mcv_start is None else mcv_start.category == "raised",
        dose_in_use=dose_in_use,
    )


def _other_use(d: DoseCheck, knowledge: Knowledge) -> bool:
    a = d.given
    dose_mcg = knowledge.formulary.to_mcg(a.dose, a.unit)
    return not_for_deficiency_use(a.product, a.route, dose_mcg, knowledge) is not None


def _counts_as(
    checked: tuple[DoseCheck, ...], course: Course, *, prior_completed: bool, catching_up: bool
) -> tuple[DoseCheck, ...]:
    """What each valid dose counted as: loading, maintenance or oral; invalid doses nothing."""
    loading_dates = set() if prior_completed else set(course.dates[: course.loading_run])
    out = []
    for d in checked:
        if not d.valid:
            kind = "none"
        elif d.oral:
            kind = "oral"
        elif catching_up or d.given.date in loading_dates:
            kind = "loading"
        else:
            kind = "maintenance"
        out.append(dataclasses.replace(d, counts_as=kind))
    return tuple(out)


def _validity(d: DoseCheck) -> DoseValidity:
    a = d.given
    return DoseValidity(a.date, a.product, a.dose, a.unit, a.route, d.valid, d.counts_as, d.reasons)


def _phase(
    case: Case,
    course: Course,
    as_of: date,
    interval_days: int | None,
    knowledge: Knowledge,
    *,
    loading_complete: bool,
    catching_up: bool,
    prior_completed: bool,
    oral: bool,
    oral_dose_given: bool,
) -> str:
    """untreated | loading | maintenance | stopped, from the doses actually given.

    Stopped: the prescription has ended, or no injection for more than ``stopped_factor``
    maintenance intervals (contract v1). An oral regimen is maintenance once an oral dose is
    recorded or its order has started (contract v1.1 rule 6); loading completed elsewhere is
    maintenance (rule 10); a course begun at maintenance recently is loading again (rule 13).
    """
    rx = case.prescription
    ended = rx is not None and rx.end is not None and rx.end <= as_of
    if oral:
        if ended:
            return "stopped"
        return "maintenance" if rx is not None or oral_dose_given else "untreated"
    if course.last is None:
        return "maintenance" if prior_completed and not ended else "untreated"
    if ended:
        return "stopped"
    if interval_days is not None:
        limit = knowledge.timing("stopped_factor") * interval_days
        if (as_of - course.last).days > limit:
            return "stopped"
    if loading_complete or (course.moved_to_maintenance and not catching_up):
        return "maintenance"
    return "loading"


def _regimen(ctx: Context) -> Regimen | None:
    p = ctx.protocol
    if p is None or ctx.interval is None:
        return None
    dose, unit = (p.dose, p.unit)
    if p.oral and ctx.dose_in_use is not None:
        dose, unit = ctx.dose_in_use  # an oral protocol is a range: report the order's dose
    return Regimen(
        protocol_id=p.id,
        product=p.product,
        dose=dose,
        unit=unit,
        route=p.routes[0],
        loading=LoadingProgress(
            doses_given=ctx.loading_counted,
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
    pregnant = {"pregnancy", "breastfeeding"} & set(ctx.case.causes)
    wanted.append("symptom_review_pregnancy" if pregnant else "symptom_review")
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
