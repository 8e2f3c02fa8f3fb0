"""What the pages show, computed from an assessment and the knowledge base (no I/O).

Templates stay dumb: they receive these small frozen objects. Each text that explains a finding
or a regimen is the knowledge base's own (title, rule, advice, source), never rewritten here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from b12plan.core.assessment import Assessment, DoseValidity, DoseWindow, Finding
from b12plan.core.knowledge import Knowledge, KnowledgeError, Protocol, Source
from b12plan.core.model import Administration, Case
from b12plan.service.schemas import WorklistRow
from b12plan.web.text import human_date, num

# --- sources and findings ------------------------------------------------------------------------


def sources_for(source: str, knowledge: Knowledge) -> tuple[Source, ...]:
    """``"NG239 + BNF"`` as the cited sources (unknown ids are skipped, never invented)."""
    by_id = {s.id: s for s in knowledge.sources}
    ids = [part.strip() for part in source.split("+")]
    return tuple(by_id[i] for i in ids if i in by_id)


@dataclass(frozen=True)
class FindingView:
    code: str
    severity: str
    title: str
    message: str
    rule: str
    advice: str
    sources: tuple[Source, ...]


def explain_findings(findings: Iterable[Finding], knowledge: Knowledge) -> list[FindingView]:
    """Each finding with its plain title, the rule it applies, what to do, and its sources."""
    out = []
    for f in findings:
        try:
            spec = knowledge.finding(f.code)
            title, rule, advice = spec.title, spec.rule, spec.advice
        except KnowledgeError:
            title, rule, advice = f.code, "", ""
        out.append(
            FindingView(
                code=f.code,
                severity=f.severity,
                title=title,
                message=f.message,
                rule=rule,
                advice=advice,
                sources=sources_for(f.source, knowledge),
            )
        )
    return out


# --- the next dose -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowView:
    earliest: date
    due: date
    overdue_after: date
    state: str  # too-early | open | due | overdue
    label: str
    badge: str  # css class: ok | info | warning | critical
    days_to_due: int


def window_view(window: DoseWindow | None, today: date) -> WindowView | None:
    """Where ``today`` falls in the next dose window, in words and as a badge."""
    if window is None:
        return None
    to_due = (window.due - today).days
    if today < window.earliest:
        state, label, badge = "too-early", f"not before {human_date(window.earliest)}", "info"
    elif today < window.due:
        state, label, badge = "open", "can be given now", "ok"
    elif today <= window.overdue_after:
        state, label, badge = "due", "due now", "warning"
    else:
        days = (today - window.overdue_after).days
        state, label, badge = (
            "overdue",
            f"overdue by {days} day{'s' if days != 1 else ''}",
            ("critical"),
        )
    return WindowView(
        window.earliest, window.due, window.overdue_after, state, label, badge, to_due
    )


# --- the regimen -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegimenView:
    protocol_id: str
    title: str
    medicine: str  # "hydroxocobalamin 1 mg IM"
    loading: tuple[str, ...]
    maintenance: str
    maintenance_interval_days: int
    interval_note: str  # why the interval differs from the prescription, if it does
    progress: str
    lifelong: bool
    notes: str
    sources: tuple[Source, ...]


def regimen_view(assessment: Assessment, knowledge: Knowledge) -> RegimenView | None:
    r = assessment.regimen
    if r is None:
        return None
    try:
        p: Protocol | None = knowledge.protocol(r.protocol_id)
    except KnowledgeError:
        p = None
    planned = r.loading.doses_planned
    if r.route == "oral" or planned == 0:
        progress = "no loading course (taken by mouth)" if r.route == "oral" else "no loading"
    elif r.loading.complete:
        progress = f"loading complete ({r.loading.doses_given} doses)"
    elif "MAINTENANCE_WITHOUT_LOADING" in assessment.codes():
        progress = (
            f"loading not completed: treatment began at maintenance intervals "
            f"({r.loading.doses_given} of {planned} loading doses given)"
        )
    elif planned is not None:
        progress = f"{r.loading.doses_given} of {planned} loading doses given"
    else:
        progress = (
            f"{r.loading.doses_given} loading doses given; loading continues until symptoms "
            "stop improving"
        )
    limit = r.maintenance_interval
    note = ""
    if limit.limited_by is not None and limit.requested is not None:
        note = (
            f"prescribed every {limit.requested} days; the plan uses {limit.final} days "
            f"({limit.limited_by})"
        )
    source_ids = r.source
    if p is not None:
        source_ids = " + ".join([r.source, p.maintenance.source, *(s.source for s in p.loading)])
    return RegimenView(
        protocol_id=r.protocol_id,
        title=p.title if p is not None else r.protocol_id,
        medicine=f"{r.product} {num(r.dose)} {r.unit} {r.route}",
        loading=tuple(s.description for s in p.loading) if p is not None else (),
        maintenance=p.maintenance.description if p is not None else "",
        maintenance_interval_days=r.maintenance_interval_days,
        interval_note=note,
        progress=progress,
        lifelong=r.lifelong,
        notes=p.notes if p is not None else "",
        sources=_unique(sources_for(source_ids, knowledge)),
    )


def _unique(sources: Sequence[Source]) -> tuple[Source, ...]:
    seen: dict[str, Source] = {}
    for s in sources:
        seen.setdefault(s.id, s)
    return tuple(seen.values())


# --- the worklist --------------------------------------------------------------------------------

WORKLIST_GROUPS: tuple[tuple[str, str], ...] = (
    ("critical", "Critical findings"),
    ("overdue", "Overdue injections"),
    ("loading", "Loading course in progress"),
    ("monitoring", "Monitoring due"),
    ("stopped", "Stopped lifelong therapy"),
    ("warning", "Other warnings"),
)
"""The order a clinician works through the day (most urgent first)."""


def worklist_group(row: WorklistRow, today: date) -> str | None:
    """The first group a row belongs to, or None when nothing needs doing today."""
    codes = {f.code for f in row.findings}
    if row.worst_severity == "critical":
        return "critical"
    if "INJECTION_OVERDUE" in codes or (row.days_overdue or 0) > 0:
        return "overdue"
    if row.phase == "loading":
        return "loading"
    if any(m.due <= today for m in row.monitoring_due):
        return "monitoring"
    if "STOPPED_LIFELONG_THERAPY" in codes:
        return "stopped"
    if row.worst_severity == "warning":
        return "warning"
    return None


@dataclass(frozen=True)
class WorklistEntry:
    row: WorklistRow
    group: str
    reasons: tuple[str, ...]


def order_worklist(rows: Iterable[WorklistRow], today: date) -> list[WorklistEntry]:
    """Rows needing action today, most urgent group first; the service's order within a group."""
    rank = {g: i for i, (g, _) in enumerate(WORKLIST_GROUPS)}
    entries = []
    for row in rows:
        group = worklist_group(row, today)
        if group is not None:
            entries.append(WorklistEntry(row, group, _reasons(row, today)))
    return sorted(entries, key=lambda e: rank[e.group])  # stable: keeps the service's order


def _reasons(row: WorklistRow, today: date) -> tuple[str, ...]:
    out = [f"{f.code}" for f in row.findings if f.severity in ("critical", "warning")]
    if row.phase == "loading":
        out.append("loading")
    out += [f"{m.item} due {m.due.isoformat()}" for m in row.monitoring_due if m.due <= today]
    return tuple(out)


# --- self-injection site rotation ------------------------------------------------------------

INJECTION_SITES: tuple[str, ...] = (
    "left upper arm",
    "right upper arm",
    "left thigh",
    "right thigh",
    "left buttock",
    "right buttock",
)
"""Sites offered in the patient's form, in the order the rotation hint walks through them."""


@dataclass(frozen=True)
class RotationHint:
    last_site: str | None
    last_date: date | None
    suggested: str
    text: str


def rotation_hint(administrations: Iterable[Administration]) -> RotationHint:
    """Suggest the next site after the one used last, so the same site is not used twice running
    (injection-site pain and redness are common; rotating the site is the usual advice)."""
    with_site = [a for a in administrations if a.site]
    if not with_site:
        first = INJECTION_SITES[0]
        return RotationHint(None, None, first, "No site recorded yet: any site is fine.")
    last = max(with_site, key=lambda a: a.date)
    site = (last.site or "").strip().lower()
    if site in INJECTION_SITES:
        suggested = INJECTION_SITES[(INJECTION_SITES.index(site) + 1) % len(INJECTION_SITES)]
    else:
        suggested = INJECTION_SITES[0] if site != INJECTION_SITES[0] else INJECTION_SITES[1]
    text = (
        f"Last time ({human_date(last.date)}) you used the {last.site}. "
        f"Try the {suggested} this time."
    )
    return RotationHint(last.site, last.date, suggested, text)


# --- case helpers ---------------------------------------------------------------------------------


def upcoming(assessment: Assessment, limit: int = 6) -> list[tuple[date, str, str]]:
    """The next planned doses as (date, phase, amount)."""
    return [(d.date, d.phase, f"{num(d.dose)} {d.unit}") for d in assessment.schedule[:limit]]


def allergic_codes(knowledge: Knowledge) -> frozenset[str]:
    """Adverse event codes whose kind is ``allergic``: these need a clinician now."""
    return frozenset(e.code for e in knowledge.adverse_events if e.kind == "allergic")


def age_on(case: Case, today: date) -> int | None:
    born = case.patient.birth_date
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# --- contract v1.1: which doses counted, the allergic hold, when to get help ---------------------

DOSE_REASONS: dict[str, str] = {
    "duplicate_same_day": "a second dose on the same day",
    "not_for_deficiency": "this product, dose or route is not a treatment for deficiency",
    "dose_implausible": "the dose is implausible for the product (check mg and mcg)",
    "route_not_recommended": "this route is not recommended for this product",
    "after_allergic_reaction": "given while injections were on hold after an allergic reaction",
}
"""Plain words for the contract's dose validity reasons (a test checks every one has words)."""

COUNTS_AS: dict[str, str] = {
    "loading": "loading dose",
    "maintenance": "maintenance dose",
    "oral": "oral dose",
    "none": "not counted",
}


@dataclass(frozen=True)
class DoseView:
    date: date
    medicine: str
    valid: bool
    counts_as: str
    reasons: tuple[str, ...]


def dose_validity_view(assessment: Assessment) -> list[DoseView]:
    """Each dose given, whether it counted (towards loading, maintenance) and, if not, why."""
    return [_dose_view(d) for d in assessment.dose_validity]


def _dose_view(d: DoseValidity) -> DoseView:
    return DoseView(
        date=d.date,
        medicine=f"{d.product} {num(d.dose)} {d.unit} {d.route}",
        valid=d.valid,
        counts_as=COUNTS_AS.get(d.counts_as, d.counts_as),
        reasons=tuple(DOSE_REASONS.get(r, r.replace("_", " ")) for r in d.reasons),
    )


@dataclass(frozen=True)
class Notice:
    """A message at the top of a page: ``tone`` is its css class (critical | warning | info)."""

    id: str
    tone: str
    heading: str
    text: str


def injections_on_hold(assessment: Assessment) -> bool:
    return assessment.injections_on_hold


def oral_regimen(assessment: Assessment) -> bool:
    return assessment.regimen is not None and assessment.regimen.route == "oral"


def patient_notices(assessment: Assessment, today: date) -> list[Notice]:
    """What the patient must know first, derived from the assessment (never from the page):
    injections on hold after an allergic reaction, or a late injection. Advice to give a dose
    today appears only when an injection is actually due: never on hold, never for tablets."""
    if injections_on_hold(assessment):
        return [
            Notice(
                "hold",
                "critical",
                "Your injections are on hold.",
                "An allergic reaction was recorded. Do not give or have another B12 injection "
                "until your clinic has reviewed it and tells you it is safe to continue.",
            )
        ]
    window = assessment.next_dose
    if window is not None and today > window.overdue_after and not oral_regimen(assessment):
        return [
            Notice(
                "late",
                "critical",
                "Your next injection is late.",
                f"It was due on {human_date(window.due)}. Please contact your clinic, or give "
                "it today if you inject yourself, and log it here.",
            )
        ]
    return []


def clinician_notices(assessment: Assessment) -> list[Notice]:
    """The allergic hold, stated above everything else on the clinician's page."""
    if not injections_on_hold(assessment):
        return []
    return [
        Notice(
            "hold",
            "critical",
            "Injections on hold",
            "An allergic reaction or anaphylaxis is recorded and no rechallenge has been "
            "cleared: no dose is planned. After allergy review or a product switch, record a "
            "decision (injections cleared after an allergic reaction) with the reason.",
        )
    ]


@dataclass(frozen=True)
class Escalation:
    urgency: str  # emergency | same-day
    when: str
    action: str
    sources: tuple[Source, ...]


def escalation_advice(assessment: Assessment, knowledge: Knowledge) -> list[Escalation]:
    """When to get help, and how fast, in plain words (NG239, BNF, the US label).

    The severe-anaemia item appears only when the assessment found severe anaemia at the start
    of treatment (``HYPOKALAEMIA_RISK``): its time frame is that finding's first 48 hours.
    """

    def cited(code: str) -> tuple[Source, ...]:
        return sources_for(knowledge.finding(code).source, knowledge)

    out = [
        Escalation(
            "emergency",
            "Trouble breathing, swelling of the face, lips, tongue or throat, or feeling faint "
            "after an injection (a severe allergic reaction, anaphylaxis)",
            "Call the emergency number now (999 in the UK, 911 in the US).",
            cited("ALLERGIC_REACTION"),
        )
    ]
    if "HYPOKALAEMIA_RISK" in assessment.codes():
        out.append(
            Escalation(
                "same-day",
                "Palpitations (a racing or irregular heartbeat), muscle cramps or weakness in "
                "the first 2 days (48 hours) of treatment: your anaemia was severe, and "
                "potassium can fall as it is treated",
                "Contact your clinic or GP the same day.",
                cited("HYPOKALAEMIA_RISK"),
            )
        )
    out.append(
        Escalation(
            "same-day",
            "New or worsening numbness, tingling, weakness, problems walking or balancing, or "
            "problems with your vision",
            "Contact your clinic or GP the same day.",
            cited("NEURO_UNDERTREATED"),
        )
    )
    return out
