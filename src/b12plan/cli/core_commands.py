"""``assess``, ``schedule``, ``protocols``, ``explain`` and ``demo``: parse, evaluate, render.

No clinical logic here: a case is read and validated by ``b12plan.contract``, judged by
``b12plan.core.evaluate`` and drawn by ``b12plan.cli.render``; the shared steps and the exit-code
mapping live in ``b12plan.cli.steps`` (which also runs ``assess`` without Typer). Exit codes
follow the contract: 0 assessed (whatever the findings), 2 invalid input (one ``loc: msg`` line
per problem on stderr, nothing on stdout), 1 unexpected internal error (a short message, never a
traceback).

Only Typer and the standard library are imported at module level: pydantic, Rich and icalendar
are loaded inside the commands that use them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer

from b12plan.cli import steps
from b12plan.cli.steps import InputError

if TYPE_CHECKING:
    from rich.console import Console

    from b12plan.core.knowledge import Knowledge

P = ParamSpec("P")


def _guarded(command: Callable[P, None]) -> Callable[P, None]:
    """Map failures onto the contract's exit codes (``steps.exit_code_of``), as ``typer.Exit``."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        code = steps.exit_code_of(
            lambda: command(*args, **kwargs), passthrough=(typer.Exit, typer.Abort)
        )
        if code:
            raise typer.Exit(code)

    return run


# --- commands ---------------------------------------------------------------------------------

CaseArg = Annotated[
    str, typer.Argument(metavar="CASE.json", help="Case file (contract v1 JSON); - reads stdin.")
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        metavar="DATE",
        help="Evaluate on this date (YYYY-MM-DD) instead of the case's as_of; "
        "records dated later are left out.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
KnowledgeDirOpt = Annotated[
    str | None,
    typer.Option(
        "--knowledge-dir",
        metavar="DIR",
        help="A reviewed copy of the knowledge files to use instead of the shipped ones "
        "(default: $B12PLAN_KNOWLEDGE_DIR, else the shipped files).",
        show_default=False,
    ),
]


@_guarded
def assess(
    case_file: CaseArg,
    as_json: JsonOpt = False,
    as_of: AsOfOpt = None,
    knowledge_dir: KnowledgeDirOpt = None,
) -> None:
    """Assess a case: deficiency, phase, regimen, next dose window, schedule and findings.

    Exit 0 when assessed (even with critical findings), 2 when the case is invalid.
    """
    steps.assess(case_file, as_json=as_json, as_of=as_of, knowledge_dir=knowledge_dir)


@_guarded
def schedule(
    case_file: CaseArg,
    ics: Annotated[
        Path | None,
        typer.Option(
            "--ics",
            metavar="FILE",
            help="Write the planned doses and monitoring as an iCalendar file (- for stdout).",
            dir_okay=False,
        ),
    ] = None,
    as_of: AsOfOpt = None,
    knowledge_dir: KnowledgeDirOpt = None,
) -> None:
    """The planned doses (and monitoring) of a case, as a table or an iCalendar file."""
    knowledge = steps.knowledge_for(knowledge_dir)
    case = steps.load_case(case_file, knowledge)
    assessment = steps.assess_case(case, knowledge, steps.evaluation_date(case, as_of))
    if ics is None:
        from b12plan.cli.render import schedule_view

        steps.emit(schedule_view(assessment, patient_id=case.patient.id))
        return
    from b12plan.ics import assessment_calendar

    data = assessment_calendar(assessment, patient_id=case.patient.id)
    if str(ics) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        ics.write_bytes(data)
    except OSError as exc:
        raise InputError([f"--ics: cannot write {ics} ({exc.strerror or exc})"]) from None
    sys.stderr.write(
        f"wrote {ics}: {len(assessment.schedule)} doses, "
        f"{len(assessment.monitoring)} monitoring items\n"
    )


@_guarded
def protocols(as_json: JsonOpt = False, knowledge_dir: KnowledgeDirOpt = None) -> None:
    """The injection protocols in the knowledge base, with their sources."""
    knowledge = steps.knowledge_for(knowledge_dir)
    if as_json:
        steps.write_json([_protocol_dict(knowledge, p.id) for p in knowledge.protocols])
        return
    from b12plan.cli.render import protocols_view

    steps.emit(protocols_view(knowledge))


def _protocol_dict(knowledge: Knowledge, protocol_id: str) -> dict[str, Any]:
    protocol = knowledge.protocol(protocol_id)
    return {
        "id": protocol.id,
        "title": protocol.title,
        "jurisdiction": protocol.jurisdiction,
        "product": protocol.product,
        "dose": _number(protocol.dose),
        "unit": protocol.unit,
        "routes": list(protocol.routes),
        "loading": [
            {"description": s.description, "doses": s.doses, "source": s.source}
            for s in protocol.loading
        ],
        "loading_doses_planned": protocol.loading_doses_planned,
        "maintenance": {
            "description": protocol.maintenance.description,
            "due_interval_days": protocol.maintenance.window.due_interval_days,
            "source": protocol.maintenance.source,
        },
        "lifelong_when_chronic": protocol.lifelong_when_chronic,
        "source": protocol.source,
        "sources": _sources(knowledge, protocol.source),
        "notes": protocol.notes,
    }


def _sources(knowledge: Knowledge, source: str) -> list[dict[str, str]]:
    by_id = {s.id: s for s in knowledge.sources}
    out: list[dict[str, str]] = []
    for part in (p.strip() for p in source.split("+")):
        found = by_id.get(part)
        out.append(
            {
                "id": part,
                "citation": found.citation if found else "",
                "url": found.url if found else "",
            }
        )
    return out


@_guarded
def explain(
    code: Annotated[
        str, typer.Argument(metavar="CODE", help="A finding code, e.g. NO_PRETREATMENT_TEST.")
    ],
    as_json: JsonOpt = False,
    knowledge_dir: KnowledgeDirOpt = None,
) -> None:
    """What a finding code means: severity, rule, advice, message and source."""
    knowledge = steps.knowledge_for(knowledge_dir)
    wanted = code.strip().upper()
    spec = next((f for f in knowledge.findings if f.code == wanted), None)
    if spec is None:
        known = ", ".join(sorted(f.code for f in knowledge.findings))
        raise InputError([f"CODE: unknown finding code {code!r}; known codes: {known}"])
    if as_json:
        steps.write_json(
            {
                "code": spec.code,
                "severity": spec.severity,
                "title": spec.title,
                "rule": spec.rule,
                "advice": spec.advice,
                "message": spec.message,
                "source": spec.source,
                "sources": _sources(knowledge, spec.source),
            }
        )
        return
    from b12plan.cli.render import explain_view

    steps.emit(explain_view(knowledge, spec))


def run_core_demo(console: Console | None = None, knowledge: Knowledge | None = None) -> int:
    """Assess every shipped example case and print each; returns how many were shown.

    Kept apart from the ``demo`` command so a larger demo (database, server) can call it. Prints
    to ``console`` when given, else to stdout (styled on a terminal, plain text otherwise),
    with ``knowledge`` when given, else the one ``--knowledge-dir`` or the environment names.
    """
    from rich.console import Group
    from rich.rule import Rule

    from b12plan.cli.render import assessment_view
    from b12plan.contract import parse_case_json
    from b12plan.examples import example_cases

    if knowledge is None:
        knowledge = steps.knowledge_for(None)
    shown = 0
    for example in example_cases():
        case = parse_case_json(example.text, knowledge)
        assessment = steps.assess_case(case, knowledge, case.as_of)
        view = Group(
            Rule(f"{example.title}  ({example.name})"),
            assessment_view(assessment, patient_id=case.patient.id, title=example.title),
        )
        if console is not None:
            console.print(view)
        else:
            steps.emit(view)
        shown += 1
    return shown


@_guarded
def demo(knowledge_dir: KnowledgeDirOpt = None) -> None:
    """Assess the shipped example cases (a tour of the findings) and print each."""
    run_core_demo(knowledge=steps.knowledge_for(knowledge_dir))


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def register_core_commands(app: typer.Typer) -> None:
    """Add these commands to the ``b12plan`` app (called once from ``b12plan.cli``)."""
    app.command("assess")(assess)
    app.command("schedule")(schedule)
    app.command("protocols")(protocols)
    app.command("explain")(explain)
    app.command("demo")(demo)
