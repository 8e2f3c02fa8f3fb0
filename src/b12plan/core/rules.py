"""One check per finding code. Each docstring paraphrases the rule and names its source.

A check returns a tuple of findings (empty when the rule does not fire). Checks never print, log
or read the clock: ``ctx.as_of`` is the only "now".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from b12plan.core.assessment import Finding
from b12plan.core.context import Context
from b12plan.core.course import Course
from b12plan.core.facts import (
    B12_MARKERS,
    DIAGNOSTIC,
    Result,
    current_record,
    is_anaemic,
    latest,
    nitrous_oxide_sources,
)
from b12plan.core.model import Administration, Prescription
from b12plan.core.plan import no_improvement_recorded, patient_reported_settled
from b12plan.core.validity import (
    allergic_events,
    clearance,
    not_for_deficiency_use,
    order_problem,
)

Check = Callable[[Context], tuple[Finding, ...]]
NONE: tuple[Finding, ...] = ()


def _days(a: date, b: date) -> int:
    return (b - a).days


def _amount(dose: float, unit: str) -> str:
    shown = int(dose) if float(dose).is_integer() else dose
    return f"{shown} {unit}"


def check_insufficient_data(ctx: Context) -> tuple[Finding, ...]:
    """Deficiency or phase cannot be determined from the data: say what is missing (contract)."""
    reasons: list[str] = []
    if ctx.deficiency.status == "unknown":
        reasons.append(ctx.deficiency.problem)
        if ctx.neuro_unresolved and not ctx.course.dates:
            reasons.append(
                "neurological symptoms: test now, but do not delay treatment for"
                " results; seek specialist advice"
            )
    if ctx.choice.problem:
        reasons.append(ctx.choice.problem)
    if ctx.prior_loading_completed and ctx.course.last is None and ctx.protocol is not None:
        reasons.append(
            "treated elsewhere with loading completed, but the date of the last dose is not"
            " recorded: record it to plan the next dose"
        )
    if not reasons:
        return NONE
    return (ctx.finding("INSUFFICIENT_DATA", reasons=reasons),)


def check_no_pretreatment_test(ctx: Context) -> tuple[Finding, ...]:
    """Take blood for testing before the first dose (NG239; Silverstein 2019)."""
    first = ctx.course.first
    if first is None or ctx.prior_loading_completed:
        return NONE  # contract v1.1 rule 10: treated elsewhere first, tests were there
    if any(r.code in DIAGNOSTIC and r.date <= first for r in ctx.results):
        return NONE
    return (ctx.finding("NO_PRETREATMENT_TEST", first_injection=first),)


def check_treatment_without_indication(ctx: Context) -> tuple[Finding, ...]:
    """Treated although pre-treatment tests were normal, with no neurological symptom, chronic
    cause or macrocytic anaemia (Silverstein 2019: a quarter of injected older adults)."""
    first = ctx.course.first
    if first is None or ctx.deficiency.status != "unlikely" or ctx.prior_loading_completed:
        return NONE
    if ctx.neuro_codes or ctx.chronic or (ctx.anaemic_at_start and ctx.macrocytic_at_start):
        return NONE
    return (
        ctx.finding(
            "TREATMENT_WITHOUT_INDICATION",
            first_injection=first,
            results=[r.describe() for r in ctx.deficiency.basis],
        ),
    )


def _undertreatment_reason(ctx: Context) -> str | None:
    """Why the current regimen is less intensive than neurological involvement needs, if it is."""
    protocol, rx, course = ctx.protocol, ctx.case.prescription, ctx.course
    if ctx.oral:
        return "the regimen is oral: neurological involvement needs injections"
    if ctx.on_hold:
        return (
            "injections are on hold after an allergic reaction: seek specialist advice on an"
            " alternative product under supervision"
        )
    if not course.dates:
        return "no treatment has started"
    if ctx.phase == "stopped":
        return f"injections have stopped (last on {course.last})"
    if protocol is None:
        return None
    if _maintenance_without_loading(ctx):
        return "treatment began at a maintenance interval"
    if _loading_cut_short(ctx):
        return "loading moved to longer intervals before symptoms stopped improving"
    nd = ctx.next_dose
    if ctx.phase == "loading" and nd is not None and ctx.as_of > nd.overdue_after:
        return f"the loading course has lapsed: the next dose was due on {nd.due}"
    if ctx.phase == "loading" and rx is not None and rx.phase == "loading":
        stage = protocol.loading_stage_for_dose(course.loading_run + 1)
        if stage is not None and rx.interval_days > stage.window.due_interval_days:
            return (
                f"the loading interval is {rx.interval_days} days instead of"
                f" {stage.window.due_interval_days}"
            )
    limit = protocol.maintenance.interval_range_days[1]
    if (
        ctx.interval is not None
        and ctx.interval.requested is not None
        and ctx.interval.requested > limit
    ):
        return (
            f"the maintenance interval of {ctx.interval.requested} days is longer than {limit} days"
        )
    return None


def check_neuro_undertreated(ctx: Context) -> tuple[Finding, ...]:
    """Neurological involvement: hydroxocobalamin 1 mg alternate days until no further
    improvement, then every 2 months; treat urgently, do not wait for results (NG239, BNF)."""
    if not ctx.neuro_unresolved or not ctx.choice.indicated:
        return NONE
    reason = _undertreatment_reason(ctx)
    if reason is None:
        return NONE
    return (
        ctx.finding(
            "NEURO_UNDERTREATED",
            symptoms=list(ctx.neuro_unresolved),
            reason=reason,
            protocol_id=ctx.protocol.id if ctx.protocol else None,
        ),
    )


def started_at_maintenance(course: Course) -> bool:
    """The second valid dose came a maintenance gap after the first: no loading run."""
    return len(course.dates) >= 2 and course.loading_run == 1


def _maintenance_without_loading(ctx: Context) -> bool:
    course, rx = ctx.course, ctx.case.prescription
    if ctx.deficiency.status == "unlikely" and not ctx.chronic:
        return False
    if ctx.prior_loading_completed or ctx.oral:
        return False  # loading was done elsewhere; an oral regimen has no loading course
    ordered_at_maintenance = (
        rx is not None and rx.phase == "maintenance" and course.loading_run <= 1
    )
    return started_at_maintenance(course) or ordered_at_maintenance


def check_maintenance_without_loading(ctx: Context) -> tuple[Finding, ...]:
    """Loading first, then maintenance: monthly (or 2-3 monthly) from the start is a common
    mistake (Seed; NG239; BNF)."""
    if not _maintenance_without_loading(ctx):
        return NONE
    course, rx = ctx.course, ctx.case.prescription
    if started_at_maintenance(course):
        gap = _days(course.dates[0], course.dates[1])
        how = f"second dose {gap} days after the first on {course.dates[0]}"
        window = int(ctx.knowledge.timing("catch_up_window_days"))
        if ctx.catching_up:
            plan_text = ": the plan now completes the protocol's loading course"
        else:
            plan_text = (
                f"; the first dose was {window} days or more ago, so stores were probably"
                " refilled: review whether a loading course is still needed"
            )
        return (
            ctx.finding(
                "MAINTENANCE_WITHOUT_LOADING",
                how=how,
                plan_text=plan_text,
                catch_up=ctx.catching_up,
                first_injection=course.dates[0],
                second_injection=course.dates[1],
                gap_days=gap,
                loading_doses_given=course.loading_run,
            ),
        )
    assert rx is not None
    how = f"a maintenance prescription every {rx.interval_days} days from {rx.start}"
    return (
        ctx.finding(
            "MAINTENANCE_WITHOUT_LOADING",
            how=how,
            plan_text="",
            prescription_phase=rx.phase,
            prescription_interval_days=rx.interval_days,
            loading_doses_given=course.loading_run,
        ),
    )


def _loading_cut_short(ctx: Context) -> bool:
    course, rx = ctx.course, ctx.case.prescription
    if ctx.protocol is None or ctx.oral or course.loading_run < 2 or ctx.loading.complete:
        return False
    return course.moved_to_maintenance or (rx is not None and rx.phase == "maintenance")


def check_loading_incomplete(ctx: Context) -> tuple[Finding, ...]:
    """Complete the loading doses before maintenance; with neurological involvement continue
    until symptoms stop improving (BNF, NG239)."""
    if not _loading_cut_short(ctx):
        return NONE
    protocol, course = ctx.protocol, ctx.course
    assert protocol is not None
    switched_on = course.first_maintenance_dose or ctx.loading.judged_on
    planned = protocol.loading_doses_planned
    if planned is None:
        planned_text = " while neurological symptoms were still improving"
    else:
        planned_text = f" of {planned} planned"
    return (
        ctx.finding(
            "LOADING_INCOMPLETE",
            switched_on=switched_on,
            doses_given=course.loading_run,
            doses_planned=planned,
            planned_text=planned_text,
            protocol_id=protocol.id,
        ),
    )


def check_ready_for_maintenance(ctx: Context) -> tuple[Finding, ...]:
    """After the loading course, continue at the maintenance interval (BNF, NG239)."""
    course = ctx.course
    if (
        not ctx.loading.complete
        or course.moved_to_maintenance
        or ctx.phase == "stopped"
        or ctx.next_dose is None
        or ctx.interval is None
    ):
        return NONE
    return (
        ctx.finding(
            "READY_FOR_MAINTENANCE",
            doses_given=course.loading_run,
            last_loading_dose=course.last_loading_dose,
            first_maintenance_due=ctx.next_dose.due,
            interval_days=ctx.interval.final,
        ),
    )


def _results_after_loading(ctx: Context) -> tuple[Result, ...]:
    end = ctx.loading_end
    if end is None:
        return ()
    return tuple(r for r in ctx.results if r.date > end)


def _active_deficiency(ctx: Context) -> list[str]:
    """Latest post-loading MMA raised, or latest post-loading anaemia with MCV > 100 fL."""
    after = _results_after_loading(ctx)
    found: list[str] = []
    mma = latest(after, "mma")
    if mma is not None and mma.category == "raised":
        found.append(mma.describe())
    hb, mcv = latest(after, "haemoglobin"), latest(after, "mcv")
    if (
        hb is not None
        and mcv is not None
        and mcv.category == "raised"
        and is_anaemic(hb, ctx.case, ctx.knowledge)
    ):
        found.extend([hb.describe(), mcv.describe()])
    return found


def check_active_deficiency_on_maintenance(ctx: Context) -> tuple[Finding, ...]:
    """Maintenance is not enough while deficiency is active: raised MMA, or anaemia with
    MCV > 100 fL after loading (Seed, CKS)."""
    if not ctx.in_maintenance:
        return NONE
    found = _active_deficiency(ctx)
    if not found:
        return NONE
    return (ctx.finding("ACTIVE_DEFICIENCY_ON_MAINTENANCE", results=found),)


def _troughs(ctx: Context) -> tuple[Result, ...]:
    """Serum B12 samples taken at least ``trough_min_days`` after the preceding dose."""
    min_days = ctx.knowledge.timing("trough_min_days")
    out = []
    for r in ctx.results:
        if r.code != "b12_total":
            continue
        before = ctx.course.dose_before(r.date - timedelta(days=1))
        if before is not None and _days(before, r.date) >= min_days:
            out.append(r)
    return tuple(out)


def _falling_levels(ctx: Context) -> str | None:
    troughs = _troughs(ctx)
    if not troughs:
        return None
    last = troughs[-1]
    if last.category == "deficient":
        return f"was deficient on {last.date} ({last.describe()})"
    n = int(ctx.knowledge.timing("falling_trough_samples"))
    tail = troughs[-n:]
    if len(tail) == n and all(b.value < a.value for a, b in itertools.pairwise(tail)):
        values = ", ".join(f"{t.value:.0f} {t.unit} ({t.date})" for t in tail)
        return f"fell across {n} successive samples: {values}"
    return None


def check_levels_falling_between_doses(ctx: Context) -> tuple[Finding, ...]:
    """In maintenance, the latest trough is deficient or troughs fell across successive samples:
    an advisory signal only, no guideline defines it (Seed; NG239 caveat)."""
    if not ctx.in_maintenance:
        return NONE
    detail = _falling_levels(ctx)
    if detail is None:
        return NONE
    troughs = [(t.date, round(t.value, 1)) for t in _troughs(ctx)]
    return (ctx.finding("LEVELS_FALLING_BETWEEN_DOSES", detail=detail, troughs=troughs),)


def _returning_symptom(ctx: Context) -> dict[str, Any] | None:
    """A symptom that had improved, reported present or worse late in a maintenance interval."""
    loading_end = ctx.loading_end
    if ctx.interval is None or loading_end is None:
        return None
    fraction = ctx.knowledge.timing("symptom_return_fraction")
    interval = ctx.interval.final
    for code in sorted({s.code for s in ctx.symptoms}):
        reports = [s for s in ctx.symptoms if s.code == code]
        last = reports[-1]
        if last.status not in ("present", "worsening") or last.date <= loading_end:
            continue
        if not any(s.status in ("improving", "stable", "resolved") for s in reports[:-1]):
            continue
        dose = ctx.course.dose_before(last.date)
        if dose is None or dose < loading_end:
            continue
        days = _days(dose, last.date)
        if days >= fraction * interval:
            return {
                "symptom": code,
                "status": last.status,
                "reported_on": last.date,
                "last_dose": dose,
                "days_after_dose": days,
                "interval_days": interval,
            }
    return None


def check_symptoms_return_before_dose(ctx: Context) -> tuple[Finding, ...]:
    """Symptoms coming back before the next dose is due: review and consider more frequent
    injections (NG239)."""
    if not ctx.in_maintenance:
        return NONE
    found = _returning_symptom(ctx)
    if found is None:
        return NONE
    return (ctx.finding("SYMPTOMS_RETURN_BEFORE_DOSE", **found),)


def check_symptoms_worsening(ctx: Context) -> tuple[Finding, ...]:
    """A symptom still worsening after 28 days of treatment: re-evaluate schedule and diagnosis
    (Seed)."""
    first = ctx.course.first
    if first is None:
        return NONE
    after = ctx.knowledge.timing("worsening_after_days")
    worse: list[str] = []
    latest_on: date | None = None
    for code in sorted({s.code for s in ctx.symptoms}):
        last = [s for s in ctx.symptoms if s.code == code][-1]
        if last.status == "worsening" and _days(first, last.date) >= after:
            worse.append(code)
            latest_on = max(latest_on or last.date, last.date)
    if not worse or latest_on is None:
        return NONE
    return (
        ctx.finding(
            "SYMPTOMS_WORSENING",
            symptoms=worse,
            reported_on=latest_on,
            days_on_treatment=_days(first, latest_on),
            first_injection=first,
        ),
    )


def check_no_followup_review(ctx: Context) -> tuple[Finding, ...]:
    """About 3 months after starting, review the response with a laboratory result (FBC, MMA or
    active B12), not symptoms alone (NG239; the Seed's second mistake; contract v1.1 rule 8)."""
    first = ctx.course.first
    if first is None:
        return NONE
    days = _days(first, ctx.as_of)
    if days < ctx.knowledge.timing("followup_review_days"):
        return NONE
    if any(r.date > first and ctx.knowledge.analyte(r.code).follow_up for r in ctx.results):
        return NONE
    return (ctx.finding("NO_FOLLOWUP_REVIEW", first_injection=first, days_since_first=days),)


def _describe_admin(a: Administration | Prescription) -> str:
    return f"{a.product} {_amount(a.dose, a.unit)} {a.route}"


def check_product_strength_mismatch(ctx: Context) -> tuple[Finding, ...]:
    """Different products or strengths are not interchangeable (Seed, BNF): an administration
    during the current prescription must match its product and amount, and a new order that
    switches from the last injection is flagged until a dose is given under it."""
    rx = ctx.case.prescription
    if rx is None:
        return NONE
    formulary = ctx.knowledge.formulary
    wanted = formulary.to_mcg(rx.dose, rx.unit)

    def differs(a: Administration) -> bool:
        return a.product != rx.product or formulary.to_mcg(a.dose, a.unit) != wanted

    during = [
        a
        for a in ctx.case.administrations
        if a.date >= rx.start and (rx.end is None or a.date <= rx.end)
    ]
    differing = [f"{a.date}: {_describe_admin(a)}" for a in during if differs(a)]
    before = [a for a in ctx.valid_injections() if a.date < rx.start]
    if not during and before and differs(before[-1]):
        # A new order that switches product or strength: flag it until a dose is given under it.
        differing.append(f"{before[-1].date} (before this order): {_describe_admin(before[-1])}")
    if not differing:
        return NONE
    return (
        ctx.finding(
            "PRODUCT_STRENGTH_MISMATCH",
            prescribed=_describe_admin(rx),
            detail="; ".join(differing),
            administrations=differing,
        ),
    )


def _orders(ctx: Context) -> list[tuple[str, Administration | Prescription]]:
    """The prescription and every administration, labelled for evidence (never by list index:
    input order carries no meaning)."""
    items: list[tuple[str, Administration | Prescription]] = []
    if ctx.case.prescription is not None:
        items.append(("prescription", ctx.case.prescription))
    items.extend((f"administration {a.date}", a) for a in ctx.case.administrations)
    return items


def check_product_not_for_deficiency(ctx: Context) -> tuple[Finding, ...]:
    """Hydroxocobalamin 5 g IV is a cyanide antidote (Cyanokit); cyanocobalamin is not given IV
    (US label); only formulary routes treat deficiency."""
    found = []
    for label, item in _orders(ctx):
        if order_problem(item.product, item.route, item.dose, item.unit, ctx.knowledge) != (
            "not_for_deficiency"
        ):
            continue
        dose_mcg = ctx.knowledge.formulary.to_mcg(item.dose, item.unit)
        use = not_for_deficiency_use(item.product, item.route, dose_mcg, ctx.knowledge)
        why = use or f"route {item.route} not used for {item.product} in deficiency"
        found.append(f"{label}: {_describe_admin(item)} ({why})")
    if not found:
        return NONE
    return (ctx.finding("PRODUCT_NOT_FOR_DEFICIENCY", detail="; ".join(found), items=found),)


def check_dose_unit_suspect(ctx: Context) -> tuple[Finding, ...]:
    """A dose ten times or more outside the plausible range for its product and route is a unit
    error, e.g. 1000 mg IM meant as 1000 mcg (BNF, US label; factor: local choice)."""
    found = [
        f"{label}: {_describe_admin(item)}"
        for label, item in _orders(ctx)
        if order_problem(item.product, item.route, item.dose, item.unit, ctx.knowledge)
        == "dose_implausible"
    ]
    if not found:
        return NONE
    return (ctx.finding("DOSE_UNIT_SUSPECT", detail="; ".join(found), items=found),)


def check_stopped_lifelong_therapy(ctx: Context) -> tuple[Finding, ...]:
    """Do not stop injections when the cause is irreversible (NG239). Not while injections are on
    hold after an allergic reaction: "restart" would contradict the hold; the allergic-reaction
    finding asks for specialist review of an alternative instead."""
    if not ctx.chronic or ctx.phase != "stopped" or ctx.on_hold:
        return NONE
    causes = [c for c in ctx.case.causes if ctx.knowledge.cause(c).chronic]
    rx = ctx.case.prescription
    if rx is not None and rx.end is not None and rx.end <= ctx.as_of:
        return (
            ctx.finding(
                "STOPPED_LIFELONG_THERAPY",
                causes=causes,
                reason=f"the prescription ended on {rx.end}",
                prescription_end=rx.end,
                last_injection=ctx.course.last,
            ),
        )
    last = ctx.course.last
    assert last is not None and ctx.interval is not None
    days = _days(last, ctx.as_of)
    return (
        ctx.finding(
            "STOPPED_LIFELONG_THERAPY",
            causes=causes,
            reason=f"there has been no injection for {days} days (since {last})",
            last_injection=last,
            days_since=days,
            limit_days=int(ctx.knowledge.timing("stopped_factor") * ctx.interval.final),
        ),
    )


def check_injection_overdue(ctx: Context) -> tuple[Finding, ...]:
    """The next dose window is anchored to the last actual dose; past it, the dose is overdue."""
    nd = ctx.next_dose
    if nd is None or ctx.as_of <= nd.overdue_after:
        return NONE  # no next dose while injections are on hold: never "overdue" then
    return (
        ctx.finding(
            "INJECTION_OVERDUE",
            due=nd.due,
            overdue_after=nd.overdue_after,
            days_overdue=_days(nd.overdue_after, ctx.as_of),
            last_injection=ctx.course.last,
        ),
    )


def check_adherence_gap(ctx: Context) -> tuple[Finding, ...]:
    """A past maintenance gap longer than 1.5 intervals: maintenance may not be enough (Seed).
    Not on an oral regimen: past injection gaps are not judged against a daily tablet."""
    if ctx.interval is None or ctx.oral or not ctx.course.moved_to_maintenance:
        return NONE
    limit = ctx.knowledge.timing("adherence_gap_factor") * ctx.interval.final
    gaps = [(a, b, _days(a, b)) for a, b in ctx.course.maintenance_gaps() if _days(a, b) > limit]
    if not gaps:
        return NONE
    detail = "; ".join(f"{d} days from {a} to {b}" for a, b, d in gaps)
    return (
        ctx.finding(
            "ADHERENCE_GAP",
            limit_days=round(limit),
            detail=detail,
            gaps=[[a, b, d] for a, b, d in gaps],
        ),
    )


def check_post_injection_sample(ctx: Context) -> tuple[Finding, ...]:
    """Serum B12 after injections reflects the injections, not stores (NG239)."""
    first = ctx.first_treatment  # a B12 after treatment elsewhere began counts too (rule 10)
    if first is None:
        return NONE
    dates = sorted({r.date for r in ctx.results if r.code in B12_MARKERS and r.date > first})
    if not dates:
        return NONE
    return (ctx.finding("POST_INJECTION_SAMPLE", dates=dates, first_injection=first),)


def _maintenance_days(ctx: Context) -> int:
    """The chosen protocol's maintenance interval, else the jurisdiction's default protocol's."""
    if ctx.interval is not None and not ctx.oral:
        return ctx.interval.final
    return ctx.knowledge.default_protocol(
        ctx.case.jurisdiction
    ).maintenance.window.due_interval_days


def check_folate_without_b12(ctx: Context) -> tuple[Finding, ...]:
    """Never folic acid alone while B12 deficiency is present or not excluded, and "never tested"
    is not excluded (BNF, NG239; contract v1.1 rule 3); start B12 at least 24 hours first (BSH).
    B12 given more than twice the maintenance interval before folic acid started does not count.
    In pregnancy folic acid continues: start or test B12 alongside it (NG239)."""
    if ctx.deficiency.status not in ("confirmed", "possible", "unknown"):
        return NONE
    folic = [
        m
        for m in ctx.case.medications
        if m.code == "folic_acid" and (m.end is None or m.end > ctx.as_of)
    ]
    if not folic:
        return NONE
    start = folic[0].start
    lookback = int(ctx.knowledge.timing("folate_b12_lookback_factor") * _maintenance_days(ctx))
    since = start - timedelta(days=lookback)
    if any(d.valid and d.given.date >= since for d in ctx.doses):
        return NONE
    if any(
        m.code == "oral_b12" and (m.end is None or m.end >= since) for m in ctx.case.medications
    ):
        return NONE
    older = [d.given.date for d in ctx.doses if d.valid]
    lookback_text = (
        f" (the last B12 dose, on {older[-1]}, was more than {lookback} days before)"
        if older
        else ""
    )
    deficiency_text = (
        "not excluded (B12 never tested)"
        if ctx.deficiency.status == "unknown"
        else ctx.deficiency.status
    )
    pregnant = bool({"pregnancy", "breastfeeding"} & set(ctx.case.causes))
    return (
        ctx.finding(
            "FOLATE_WITHOUT_B12",
            variant="pregnancy" if pregnant else None,
            folic_acid_start=start,
            deficiency=ctx.deficiency.status,
            deficiency_text=deficiency_text,
            lookback_text=lookback_text,
            lookback_days=lookback,
            pregnant_or_breastfeeding=pregnant,
        ),
    )


def check_hypokalaemia_risk(ctx: Context) -> tuple[Finding, ...]:
    """Severe megaloblastic anaemia being treated: watch potassium in the first 48 hours
    (US label); Hb < 80 g/L as 'severe' is a local choice."""
    if ctx.phase not in ("untreated", "loading") or not ctx.choice.indicated:
        return NONE
    hb = latest(ctx.results, "haemoglobin", on_or_before=ctx.course.first)
    limit = ctx.knowledge.timing("severe_anaemia_hb_g_per_l")
    if hb is None or hb.value >= limit:
        return NONE
    first = ctx.course.first
    if first is not None and latest(ctx.results, "potassium", after=first - timedelta(days=1)):
        return NONE
    return (
        ctx.finding("HYPOKALAEMIA_RISK", hb=round(hb.value), hb_date=hb.date, limit=round(limit)),
    )


def _events(ctx: Context, kind: str) -> list[str]:
    return [
        f"{e.code} on {e.date}"
        for e in ctx.case.adverse_events
        if ctx.knowledge.adverse_event(e.code).kind == kind
    ]


def check_allergic_reaction(ctx: Context) -> tuple[Finding, ...]:
    """Anaphylaxis is rare: stop, escalate, record; further doses only after a clinician's review,
    possibly a different product under supervision (US label, BNF). Until a recorded
    ``rechallenge_cleared`` decision, injections are on hold: no next dose, no schedule, never
    "overdue" (contract v1.1)."""
    events = _events(ctx, "allergic")
    if not events:
        return NONE
    cleared = [
        c
        for e in allergic_events(ctx.case, ctx.knowledge)
        if (c := clearance(e, ctx.case.decisions, ctx.as_of)) is not None
    ]
    if ctx.on_hold:
        hold_text = (
            "injections are on hold until a clinician records that they are cleared"
            " (rechallenge_cleared)"
        )
    else:
        last = max(cleared, key=lambda d: d.date)
        hold_text = f"injections were cleared on {last.date} by {last.by} ({last.reason})"
    evidence: dict[str, Any] = {"events": events, "injections_on_hold": ctx.on_hold}
    if cleared and not ctx.on_hold:
        evidence["cleared_on"] = max(c.date for c in cleared)
    return (ctx.finding("ALLERGIC_REACTION", hold_text=hold_text, **evidence),)


def check_injection_site_reaction(ctx: Context) -> tuple[Finding, ...]:
    """Only local injection-site effects recorded: common, usually mild (BNF)."""
    local = _events(ctx, "local")
    if not local or len(local) != len(ctx.case.adverse_events):
        return NONE
    return (ctx.finding("INJECTION_SITE_REACTION", events=local),)


def check_oral_maintenance_option(ctx: Context) -> tuple[Finding, ...]:
    """Dietary cause without neurological involvement, stores replete: oral maintenance is an
    option (CKS, BNF, NG239)."""
    p = ctx.protocol
    if p is None or p.dietary_only != "required" or not ctx.loading.complete:
        return NONE
    return (
        ctx.finding(
            "ORAL_MAINTENANCE_OPTION",
            alternative=p.maintenance.route_alternatives,
            protocol_id=p.id,
        ),
    )


def check_cause_unknown(ctx: Context) -> tuple[Finding, ...]:
    """Identify the cause: it decides whether treatment is lifelong (NG239)."""
    if ctx.deficiency.status not in ("confirmed", "possible"):
        return NONE
    if set(ctx.case.causes) - {"unknown"}:
        return NONE
    if any(ctx.knowledge.medication(m.code).risk_factor for m in ctx.case.medications):
        return NONE  # contract v1.1 rule 11: a drug risk factor is a recorded possible cause
    return (
        ctx.finding(
            "CAUSE_UNKNOWN", deficiency=ctx.deficiency.status, causes=list(ctx.case.causes)
        ),
    )


def _maintenance_fits(ctx: Context) -> list[str] | None:
    """The seed's criteria for maintenance-interval dosing; the results that show it, or None."""
    course = ctx.course
    if not (ctx.in_maintenance and ctx.loading.complete and course.moved_to_maintenance):
        return None
    if ctx.on_hold or ctx.oral:
        return None
    if _active_deficiency(ctx) or _falling_levels(ctx) or _returning_symptom(ctx):
        return None
    if ctx.next_dose is not None and ctx.as_of > ctx.next_dose.overdue_after:
        return None
    if ctx.interval is None or ctx.interval.limited_by is not None:
        return None
    after = _results_after_loading(ctx)
    objective = [r for r in after if r.code in ("mma", "haemoglobin", "mcv")]
    if not objective:
        return None
    for code in ("mma", "mcv"):
        last = latest(after, code)
        if last is not None and last.category == "raised":
            return None
    hb = latest(after, "haemoglobin")
    if hb is not None and is_anaemic(hb, ctx.case, ctx.knowledge) is not False:
        return None
    for code in sorted({s.code for s in ctx.symptoms}):
        current = [s for s in ctx.symptoms if s.code == code][-1]
        if current.status in ("present", "worsening"):
            return None
    shown = [r for code in ("mma", "haemoglobin", "mcv") if (r := latest(after, code))]
    return [r.describe() for r in shown]


def check_maintenance_appropriate(ctx: Context) -> tuple[Finding, ...]:
    """Maintenance-interval dosing fits: loading completed, stable on injections, follow-up
    results in range, symptoms improved or resolved (Seed, NG239)."""
    results = _maintenance_fits(ctx)
    if results is None or ctx.interval is None:
        return NONE
    if any(f for f in check_adherence_gap(ctx)):
        return NONE
    return (
        ctx.finding(
            "MAINTENANCE_APPROPRIATE",
            interval_days=ctx.interval.final,
            results=results,
            cause_chronic=ctx.chronic,
        ),
    )


def check_interval_longer_than_protocol(ctx: Context) -> tuple[Finding, ...]:
    """Maintenance every 2-3 months for hydroxocobalamin (2 with neurological involvement),
    monthly for cyanocobalamin: the products are not interchangeable (NG239, BNF, US label)."""
    if ctx.interval is None or ctx.interval.limited_by is None or ctx.protocol is None:
        return NONE
    return (
        ctx.finding(
            "INTERVAL_LONGER_THAN_PROTOCOL",
            prescribed_interval_days=ctx.interval.requested,
            protocol_id=ctx.protocol.id,
            protocol_max_days=ctx.protocol.maintenance.interval_range_days[1],
            final_interval_days=ctx.interval.final,
        ),
    )


# --- contract v1.1: clinical safety ------------------------------------------------------------


def _neuro_loading(ctx: Context) -> bool:
    """On the neurological protocol and still loading (loading not ended)."""
    p = ctx.protocol
    return (
        p is not None
        and p.loading_end == "symptoms_stop_improving"
        and ctx.phase == "loading"
        and ctx.course.first is not None
    )


def check_neuro_review_due(ctx: Context) -> tuple[Finding, ...]:
    """A patient's or carer's "stable"/"resolved" never ends alternate-day loading: "until no
    further improvement" is a clinician's judgement; it asks for a review (BNF, NG239; contract
    v1.1 rule 1)."""
    if not _neuro_loading(ctx):
        return NONE
    report = patient_reported_settled(ctx.symptoms, ctx.neuro_codes, ctx.as_of, ctx.knowledge)
    if report is None:
        return NONE
    current = [current_record(ctx.symptoms, c, ctx.as_of) for c in ctx.neuro_codes]
    statuses = sorted({r.status for r in current if r is not None})
    return (
        ctx.finding(
            "NEURO_REVIEW_DUE",
            reporter=report.reporter,
            symptoms=list(ctx.neuro_codes),
            statuses=" or ".join(statuses),
            reported_on=report.date,
            first_injection=ctx.course.first,
        ),
    )


def check_neuro_no_response(ctx: Context) -> tuple[Finding, ...]:
    """No improvement recorded after 21 days of alternate-day loading, or a clinician's "stable"
    with no improvement ever recorded, is non-response: re-evaluate the diagnosis, seek specialist
    advice; loading continues (NG239; the 21 days are a local choice)."""
    first = ctx.course.first
    if not _neuro_loading(ctx) or first is None:
        return NONE
    if not no_improvement_recorded(ctx.symptoms, ctx.neuro_codes, first, ctx.as_of):
        return NONE
    days = _days(first, ctx.as_of)
    clinician_stable = [
        c
        for c in ctx.neuro_codes
        if (r := current_record(ctx.symptoms, c, ctx.as_of)) is not None
        and r.status == "stable"
        and ctx.knowledge.reporter(r.reporter).ends_neuro_loading
    ]
    if days < ctx.knowledge.timing("neuro_no_response_days") and not clinician_stable:
        return NONE
    stable_text = (
        f", judged stable by a clinician ({', '.join(clinician_stable)})"
        if clinician_stable
        else ""
    )
    return (
        ctx.finding(
            "NEURO_NO_RESPONSE",
            first_injection=first,
            days_on_loading=days,
            stable_text=stable_text,
            clinician_stable=clinician_stable,
            symptoms=list(ctx.neuro_codes),
        ),
    )


def check_nitrous_oxide_exposure(ctx: Context) -> tuple[Finding, ...]:
    """Nitrous oxide causes functional deficiency with a normal total B12: with neurological
    symptoms treat now without waiting for results, test homocysteine or MMA, advise stopping,
    seek specialist advice (NG239)."""
    via = nitrous_oxide_sources(ctx.case)
    if not via or not ctx.neuro_unresolved:
        return NONE
    return (
        ctx.finding(
            "NITROUS_OXIDE_EXPOSURE",
            via=" and ".join(f"recorded as a {v}" for v in via),
            symptoms=list(ctx.neuro_unresolved),
            deficiency=ctx.deficiency.status,
        ),
    )


def check_confirmatory_test_needed(ctx: Context) -> tuple[Finding, ...]:
    """An indeterminate total B12 (or a raised homocysteine alone) with no MMA or active B12, no
    neurological symptom and no anaemia: test before treating; a drug risk factor is a reason to
    test, never on its own to inject (NG239, BSH; contract v1.1 rule 5)."""
    if not ctx.confirmatory_test_needed:
        return NONE
    risks = [m.code for m in ctx.case.medications if ctx.knowledge.medication(m.code).risk_factor]
    risks += [c for c in ctx.case.causes if c in ("metformin", "ppi")]
    risk_text = (
        f" ({', '.join(sorted(set(risks)))}: a reason to test, not to inject)" if risks else ""
    )
    return (
        ctx.finding(
            "CONFIRMATORY_TEST_NEEDED",
            results=[r.describe() for r in ctx.deficiency.basis],
            risk_text=risk_text,
            risk_factors=sorted(set(risks)),
        ),
    )


def check_pregnancy_review(ctx: Context) -> tuple[Finding, ...]:
    """Pregnancy or breastfeeding: active B12 first (total B12 falls in pregnancy), specialist
    advice, folic acid continues, review at 1 month (NG239)."""
    states = [c for c in ("pregnancy", "breastfeeding") if c in ctx.case.causes]
    if not states or ctx.deficiency.status not in ("confirmed", "possible"):
        return NONE
    state = "Pregnant" if "pregnancy" in states else "Breastfeeding"
    return (
        ctx.finding(
            "PREGNANCY_REVIEW", state=state, causes=states, deficiency=ctx.deficiency.status
        ),
    )


def check_outside_scope_age(ctx: Context) -> tuple[Finding, ...]:
    """NG239 covers people aged 16 and over: no adult dose for a child (paediatric specialist,
    BNFC)."""
    if not ctx.out_of_scope_age:
        return NONE
    return (
        ctx.finding(
            "OUTSIDE_SCOPE_AGE",
            age_years=ctx.age_years,
            as_of=ctx.as_of,
            birth_date=ctx.case.patient.birth_date,
            minimum_age_years=int(ctx.knowledge.timing("minimum_age_years")),
        ),
    )


def check_oral_dose_too_low_for_malabsorption(ctx: Context) -> tuple[Finding, ...]:
    """With malabsorption, oral B12 needs at least 1 mg daily (NG239)."""
    if not ctx.oral or ctx.dose_in_use is None or ctx.protocol is None:
        return NONE
    causes = [c for c in ctx.case.causes if ctx.knowledge.cause(c).malabsorptive]
    minimum = ctx.knowledge.timing("oral_malabsorption_min_mcg")
    dose_mcg = ctx.knowledge.formulary.to_mcg(*ctx.dose_in_use)
    if not causes or dose_mcg >= minimum:
        return NONE
    return (
        ctx.finding(
            "ORAL_DOSE_TOO_LOW_FOR_MALABSORPTION",
            product=ctx.protocol.product,
            dose=_amount(*ctx.dose_in_use),
            dose_mcg=dose_mcg,
            minimum=_amount(minimum, "mcg"),
            causes=causes,
        ),
    )


def check_result_implausible(ctx: Context) -> tuple[Finding, ...]:
    """A value impossible for its unit is a unit error until proven otherwise: it drives no
    decision (local rule; the ranges are local choices in the knowledge base)."""
    if not ctx.implausible:
        return NONE
    shown = [
        f"{o.code} {_amount(o.value, o.unit)} on {o.date}" + _plausible_text(ctx, o.code, o.unit)
        for o in ctx.implausible
    ]
    return (ctx.finding("RESULT_IMPLAUSIBLE", results=shown),)


def _plausible_text(ctx: Context, code: str, unit: str) -> str:
    allowed = ctx.knowledge.analyte(code).plausible_in(unit)
    if allowed is None:
        return ""
    return f" (possible: {_amount(allowed.low, '')}-{_amount(allowed.high, unit)})".replace(
        " -", "-"
    )


def check_possible_hypersensitivity(ctx: Context) -> tuple[Finding, ...]:
    """Rash or itching soon after a dose may be early hypersensitivity (US label)."""
    window = int(ctx.knowledge.timing("hypersensitivity_window_days"))
    injected = [d.given.date for d in ctx.doses if not d.oral]
    found = [
        f"{e.code} on {e.date}"
        for e in ctx.case.adverse_events
        if e.code in ("rash", "itching") and any(0 <= _days(d, e.date) <= window for d in injected)
    ]
    if not found:
        return NONE
    return (ctx.finding("POSSIBLE_HYPERSENSITIVITY", events=found, window_days=window),)


def check_patient_deceased(ctx: Context) -> tuple[Finding, ...]:
    """A deceased patient has no plan, no reminders and leaves every worklist (contract v1.1)."""
    died = ctx.case.patient.deceased_date
    if died is None or died > ctx.as_of:
        return NONE
    return (ctx.finding("PATIENT_DECEASED", deceased_date=died),)


CHECKS: tuple[Check, ...] = (
    check_insufficient_data,
    check_no_pretreatment_test,
    check_treatment_without_indication,
    check_neuro_undertreated,
    check_maintenance_without_loading,
    check_loading_incomplete,
    check_ready_for_maintenance,
    check_maintenance_appropriate,
    check_interval_longer_than_protocol,
    check_active_deficiency_on_maintenance,
    check_levels_falling_between_doses,
    check_symptoms_return_before_dose,
    check_symptoms_worsening,
    check_no_followup_review,
    check_product_strength_mismatch,
    check_product_not_for_deficiency,
    check_dose_unit_suspect,
    check_stopped_lifelong_therapy,
    check_injection_overdue,
    check_adherence_gap,
    check_post_injection_sample,
    check_folate_without_b12,
    check_hypokalaemia_risk,
    check_allergic_reaction,
    check_injection_site_reaction,
    check_oral_maintenance_option,
    check_cause_unknown,
    check_neuro_review_due,
    check_neuro_no_response,
    check_nitrous_oxide_exposure,
    check_confirmatory_test_needed,
    check_pregnancy_review,
    check_outside_scope_age,
    check_oral_dose_too_low_for_malabsorption,
    check_result_implausible,
    check_possible_hypersensitivity,
    check_patient_deceased,
)
