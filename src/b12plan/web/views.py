"""What the pages show, computed from an assessment and the knowledge base (no I/O).

Templates stay dumb: they receive these small frozen objects. Each text that explains a finding
or a regimen is the knowledge base's own (title, rule, advice, source), never rewritten here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from b12plan.core.assessment import Assessment, DoseWindow, Finding
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
    if r.loading.complete:
        progress = f"loading complete ({r.loading.doses_given} doses)"
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
