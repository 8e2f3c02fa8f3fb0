"""CDS Hooks 2.0 cards (https://cds-hooks.hl7.org/2.0/#card-attributes).

``finding_to_card`` is the only place a core ``Finding`` becomes a card. The other two cards are
not findings: the plan (next dose) and a record b12plan could not read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from b12plan.cds_hooks.discovery import override_reasons
from b12plan.core.assessment import Assessment, Finding
from b12plan.core.knowledge import Knowledge
from b12plan.fhir import describe, systems

Card = dict[str, Any]
IdFactory = Callable[[], str]

SUMMARY_MAX = 139
"""The spec: a summary of fewer than 140 characters."""

MAX_PROBLEMS_SHOWN = 20


def _clip(text: str, limit: int = SUMMARY_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "–"
    return str(value)


def _cell(value: Any) -> str:
    """An evidence value as one Markdown table cell."""
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _source_url(source: str, knowledge: Knowledge) -> str | None:
    for part in source.split("+"):
        found = next((s for s in knowledge.sources if s.id == part.strip()), None)
        if found is not None and found.url:
            return found.url
    return None


def _citations(source: str, knowledge: Knowledge) -> str:
    parts = []
    for part in (p.strip() for p in source.split("+")):
        found = next((s for s in knowledge.sources if s.id == part), None)
        parts.append(f"{part}: {found.citation}" if found is not None else part)
    return "; ".join(parts)


def _overridable(card: Card) -> Card:
    """Warning and critical cards offer coded override reasons (CDS Hooks 2.0), so a clinician
    who overrides one can say why, and the feedback call carries it to the audit log."""
    if card["indicator"] in ("warning", "critical"):
        card["overrideReasons"] = [dict(r) for r in override_reasons()]
    return card


def _source(label_source: str, knowledge: Knowledge, topic: Mapping[str, str] | None) -> Card:
    source: Card = {"label": f"b12plan ({label_source})" if label_source else "b12plan"}
    url = _source_url(label_source, knowledge) if label_source else None
    if url is not None:
        source["url"] = url
    if topic is not None:
        source["topic"] = dict(topic)
    return source


def finding_to_card(
    finding: Finding,
    *,
    knowledge: Knowledge,
    id_factory: IdFactory,
    suggestions: Sequence[Card] = (),
    summary: str | None = None,
) -> Card:
    """One finding, one card: the message as summary (the title if it would not fit), the advice,
    rule, evidence and citations as detail, the finding code as the source topic. ``summary``
    replaces the summary where the hook knows better what the finding means for this action
    (the allergic hold on a new injection order)."""
    spec = knowledge.finding(finding.code)
    if summary is None:
        summary = finding.message if len(finding.message) <= SUMMARY_MAX else _clip(spec.title)
    lines = [finding.message, "", f"**What to do:** {spec.advice}", "", f"**Rule:** {spec.rule}"]
    if finding.evidence:
        lines += ["", "| Evidence | |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in finding.evidence]
    lines += [
        "",
        f"Source: {_citations(finding.source, knowledge)}. Finding `{finding.code}`,"
        f" knowledge base {knowledge.version}.",
    ]
    card: Card = {
        "uuid": id_factory(),
        "summary": summary,
        "indicator": finding.severity,
        "detail": "\n".join(lines),
        "source": _source(
            finding.source,
            knowledge,
            {"system": systems().finding, "code": finding.code, "display": spec.title},
        ),
    }
    if suggestions:
        card["suggestions"] = list(suggestions)
        card["selectionBehavior"] = "at-most-one"
    return _overridable(card)


HOLD_SUMMARY = (
    "Injections on hold after an allergic reaction: do not sign a new B12 injection order"
    " without allergy review"
)
"""The order-sign summary of ``ALLERGIC_REACTION`` while injections are on hold (contract v1.1)."""


def oral_order_card(
    *, order: str, protocol_id: str, regimen: str, reasons: Sequence[str], id_factory: IdFactory
) -> Card:
    """An oral B12 order for a patient whose protocol is injections.

    Not a finding: the core reads an oral order as an oral regimen (contract v1.1: an oral order
    is never mapped to an injection protocol), so its own findings judge the tablets; this card
    says, at signing, that the tablets are not the protocol this patient needs.
    """
    lines = [
        f"The draft orders {order} by mouth. This patient's protocol is injections"
        f" (`{protocol_id}`: {regimen}), because {', and '.join(reasons)}.",
        "",
        "An oral order is read as an oral regimen, never as that injection protocol: signing it"
        " leaves the patient without the injection course.",
    ]
    return {
        "uuid": id_factory(),
        "summary": _clip(
            f"Oral B12 ordered, but this patient's protocol is injections ({regimen})"
        ),
        "indicator": "critical",
        "detail": "\n".join(lines),
        "source": {"label": "b12plan (contract v1.1)"},
    }


def next_dose_card(assessment: Assessment, *, knowledge: Knowledge, id_factory: IdFactory) -> Card:
    """The plan while a course is under way: the next dose window and the doses after it."""
    reg, nd = assessment.regimen, assessment.next_dose
    assert reg is not None and nd is not None
    amount = f"{reg.product} {_text(reg.dose)} {reg.unit} {reg.route}"
    if assessment.as_of > nd.overdue_after:
        summary = (
            f"Next {amount} overdue since {nd.overdue_after.isoformat()}"
            f" (was due {nd.due.isoformat()})"
        )
    else:
        summary = (
            f"Next {amount} due {nd.due.isoformat()} (from {nd.earliest.isoformat()};"
            f" overdue after {nd.overdue_after.isoformat()})"
        )
    lines = [
        f"Phase: {assessment.phase}. Protocol `{reg.protocol_id}`"
        f" ({'lifelong' if reg.lifelong else 'not lifelong'}).",
        "",
        "| Date | Phase | Dose |",
        "|---|---|---|",
    ]
    lines += [
        f"| {s.date.isoformat()} | {s.phase} | {_text(s.dose)} {s.unit} |"
        for s in assessment.schedule
    ]
    lines += ["", f"Source: {_citations(reg.source, knowledge)}."]
    return {
        "uuid": id_factory(),
        "summary": _clip(summary),
        "indicator": "info",
        "detail": "\n".join(lines),
        "source": _source(reg.source, knowledge, None),
    }


def data_problem_card(
    problems: Sequence[Mapping[str, str]], *, what: str, id_factory: IdFactory
) -> Card:
    """A record b12plan could not read: say so, rather than show nothing (which reads as "no
    problems found")."""
    n = len(problems)
    lines = [f"b12plan could not read {what}, so nothing was checked:", ""]
    lines += [f"- {describe(p)}" for p in problems[:MAX_PROBLEMS_SHOWN]]
    if n > MAX_PROBLEMS_SHOWN:
        lines.append(f"- … and {n - MAX_PROBLEMS_SHOWN} more")
    return _overridable(
        {
            "uuid": id_factory(),
            "summary": _clip(f"b12plan could not check {what}: {n} data problem{'s' * (n != 1)}"),
            "indicator": "warning",
            "detail": "\n".join(lines),
            "source": {"label": "b12plan"},
        }
    )
