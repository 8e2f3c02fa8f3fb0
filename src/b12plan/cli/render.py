"""Rich renderings for people: an assessment, the protocols, a finding's explanation.

``assessment_view`` is the one place an ``Assessment`` becomes terminal text; the other CLI
commands and the demo reuse it. Styles carry meaning only as a second channel: every severity is
also written as a word, so the output reads the same without colour (pipes, ``NO_COLOR``, logs).
Imported only by the commands that render (Rich is slow to import).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from b12plan.core.assessment import Assessment, Finding, MonitoringItem, Regimen, ScheduledDose
from b12plan.core.knowledge import FindingSpec, Knowledge, Protocol

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "blue"}
PLAIN_WIDTH = 100
"""Columns for output that is not a terminal (a pipe or a file), unless ``COLUMNS`` says."""


def make_console(*, stderr: bool = False) -> Console:
    """A console that colours a terminal and writes plain text everywhere else."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def to_text(renderable: RenderableType, *, width: int = 100) -> str:
    """Plain text of a rendering: no colour codes, no trailing padding (files, pipes, tests)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False)
    console.print(renderable)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def emit(renderable: RenderableType) -> None:
    """Print to stdout: styled on a terminal, plain text (``to_text``) anywhere else."""
    if sys.stdout.isatty():
        make_console().print(renderable)
        return
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) >= 40 else PLAIN_WIDTH
    sys.stdout.write(to_text(renderable, width=width))
    sys.stdout.flush()


def assessment_view(
    assessment: Assessment, *, patient_id: str | None = None, title: str | None = None
) -> RenderableType:
    """The whole assessment for a person: status, regimen, next dose, schedule, findings."""
    parts: list[RenderableType] = [
        _header(assessment, patient_id, title),
        _regimen(assessment.regimen),
        _next_dose(assessment),
        Text(""),
    ]
    if assessment.schedule:
        parts.append(schedule_table(assessment.schedule))
    if assessment.monitoring:
        parts.append(monitoring_table(assessment.monitoring))
    flagged = doses_not_counted(assessment)
    if flagged is not None:
        parts.append(flagged)
    parts.append(findings_view(assessment.findings))
    return Group(*parts)


def _header(assessment: Assessment, patient_id: str | None, title: str | None) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Patient", Text(patient_id or "(no id)"))
    grid.add_row("As of", Text(assessment.as_of.isoformat()))
    grid.add_row("Deficiency", Text(assessment.deficiency))
    grid.add_row("Neurological", Text(_yes_no(assessment.neurological)))
    grid.add_row("Chronic cause", Text(_yes_no(assessment.cause_chronic)))
    grid.add_row("Phase", Text(assessment.phase))
    grid.add_row("Knowledge", Text(assessment.knowledge_version))
    return Panel(grid, title=title or "B12 assessment", title_align="left", box=box.ROUNDED)


def _regimen(regimen: Regimen | None) -> RenderableType:
    if regimen is None:
        return Text("Regimen: none (no protocol applies; see the findings)", style="bold")
    loading = regimen.loading
    planned = (
        f"of {loading.doses_planned}"
        if loading.doses_planned is not None
        else "(until no further improvement)"
    )
    progress = f"{loading.doses_given} given {planned}" + (", complete" if loading.complete else "")
    interval = f"every {regimen.maintenance_interval_days} days"
    limit = regimen.maintenance_interval
    if limit.limited_by is not None:
        interval += f" (requested {limit.requested}, limited by {limit.limited_by})"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Protocol", Text(regimen.protocol_id))
    grid.add_row(
        "Dose", Text(f"{regimen.product} {_n(regimen.dose)} {regimen.unit} {regimen.route}")
    )
    grid.add_row("Loading", Text(progress))
    grid.add_row("Maintenance", Text(interval))
    grid.add_row("Lifelong", Text(_yes_no(regimen.lifelong)))
    grid.add_row("Source", Text(regimen.source))
    return Panel(grid, title="Regimen", title_align="left", box=box.ROUNDED)


NO_DOSE_TEXT = {
    "deceased": "the patient is recorded as deceased",
    "allergic_hold": "injections are on hold after an allergic reaction until a clinician"
    " clears them",
    "oral": "oral regimen: taken by mouth daily, no injections",
    "outside_scope_age": "under 16: adult protocols do not apply",
    "confirmatory_test_needed": "test MMA or active B12 first",
    "no_regimen": "no protocol applies",
    "not_planned": "see the findings",
}


def doses_not_counted(assessment: Assessment) -> RenderableType | None:
    """Doses that did not count towards the plan, or carry a caution (contract v1.1)."""
    flagged = [d for d in assessment.dose_validity if d.reasons]
    if not flagged:
        return None
    table = Table(title="Doses not counted or flagged", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("Date", "Dose", "Counted", "Why"):
        table.add_column(column)
    for d in flagged:
        dose = int(d.dose) if float(d.dose).is_integer() else d.dose
        table.add_row(
            d.date.isoformat(),
            f"{d.product} {dose} {d.unit} {d.route}",
            d.counts_as if d.valid else "no",
            ", ".join(r.replace("_", " ") for r in d.reasons),
        )
    return table


def _next_dose(assessment: Assessment) -> RenderableType:
    window = assessment.next_dose
    if window is None:
        reason = NO_DOSE_TEXT[assessment.why_no_next_dose() or "not_planned"]
        return Text(f"Next dose: none planned ({reason})")
    text = Text("Next dose: ", style="bold")
    text.append(
        f"earliest {window.earliest.isoformat()}, due {window.due.isoformat()}, "
        f"overdue after {window.overdue_after.isoformat()}"
    )
    if assessment.as_of > window.overdue_after:
        text.append("  OVERDUE", style="bold red")
    return text


def schedule_view(assessment: Assessment, *, patient_id: str | None = None) -> RenderableType:
    """The planning part of an assessment: next dose window, schedule and monitoring."""
    head = Text(
        f"Patient {patient_id or '(no id)'}, as of {assessment.as_of.isoformat()}, "
        f"phase {assessment.phase}",
        style="bold",
    )
    parts: list[RenderableType] = [head, _next_dose(assessment)]
    if assessment.regimen is not None:
        regimen = assessment.regimen
        parts.append(
            Text(
                f"Regimen: {regimen.protocol_id}, {regimen.product} {_n(regimen.dose)}"
                f" {regimen.unit} {regimen.route}"
            )
        )
    parts.append(
        schedule_table(assessment.schedule)
        if assessment.schedule
        else Text("Schedule: no doses planned (see `b12plan assess` for why)")
    )
    if assessment.monitoring:
        parts.append(monitoring_table(assessment.monitoring))
    return Group(*parts)


def schedule_table(schedule: Iterable[ScheduledDose]) -> Table:
    table = Table(title="Schedule", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Date")
    table.add_column("Phase")
    table.add_column("Dose", justify="right")
    for dose in schedule:
        table.add_row(dose.date.isoformat(), Text(dose.phase), Text(f"{_n(dose.dose)} {dose.unit}"))
    return table


def monitoring_table(items: Iterable[MonitoringItem]) -> Table:
    table = Table(title="Monitoring", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Due")
    table.add_column("Item")
    table.add_column("Reason", ratio=1)
    table.add_column("Source")
    for item in items:
        table.add_row(item.due.isoformat(), Text(item.item), Text(item.reason), Text(item.source))
    return table


def findings_view(findings: Iterable[Finding]) -> RenderableType:
    rows = list(findings)
    if not rows:
        return Text("Findings: none")
    table = Table(title="Findings", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Severity")
    table.add_column("Code")
    table.add_column("Message", ratio=1)
    table.add_column("Source")
    for finding in rows:
        style = SEVERITY_STYLE.get(finding.severity, "")
        table.add_row(
            Text(finding.severity.upper(), style=style),
            Text(finding.code, style=style),
            Text(finding.message),
            Text(finding.source),
        )
    return table


def citations(knowledge: Knowledge, source: str) -> list[str]:
    """``"NG239 + BNF"`` as each source's citation text (unknown ids shown as given)."""
    by_id = {s.id: s for s in knowledge.sources}
    out: list[str] = []
    for part in (p.strip() for p in source.split("+")):
        found = by_id.get(part)
        out.append(f"[{part}] {found.citation}" if found is not None else f"[{part}]")
    return out


def protocols_view(knowledge: Knowledge) -> RenderableType:
    return Group(*(_protocol_panel(knowledge, p) for p in knowledge.protocols))


def _protocol_panel(knowledge: Knowledge, protocol: Protocol) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("Title", Text(protocol.title))
    grid.add_row("Jurisdiction", Text(protocol.jurisdiction))
    grid.add_row(
        "Dose",
        Text(
            f"{protocol.product} {_n(protocol.dose)} {protocol.unit} {' or '.join(protocol.routes)}"
        ),
    )
    grid.add_row("Loading", Text("; then ".join(s.description for s in protocol.loading)))
    grid.add_row("Maintenance", Text(protocol.maintenance.description))
    grid.add_row(
        "Lifelong", Text("when the cause is chronic" if protocol.lifelong_when_chronic else "no")
    )
    grid.add_row("Sources", Text("\n".join(citations(knowledge, protocol.source))))
    if protocol.notes:
        grid.add_row("Notes", Text(protocol.notes))
    return Panel(grid, title=protocol.id, title_align="left", box=box.ROUNDED)


def explain_view(knowledge: Knowledge, spec: FindingSpec) -> RenderableType:
    style = SEVERITY_STYLE.get(spec.severity, "")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("Severity", Text(spec.severity, style=style))
    grid.add_row("Title", Text(spec.title))
    grid.add_row("Rule", Text(spec.rule))
    grid.add_row("Advice", Text(spec.advice))
    grid.add_row("Message", Text(spec.message))
    grid.add_row("Sources", Text("\n".join(citations(knowledge, spec.source))))
    return Panel(grid, title=Text(spec.code, style=style), title_align="left", box=box.ROUNDED)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _n(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
