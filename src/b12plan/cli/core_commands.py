"""``assess``, ``schedule``, ``protocols``, ``explain`` and ``demo``: parse, evaluate, render.

No clinical logic here: a case is read and validated by ``b12plan.contract``, judged by
``b12plan.core.evaluate`` and drawn by ``b12plan.cli.render``. Exit codes follow the contract:
0 assessed (whatever the findings), 2 invalid input (one ``loc: msg`` line per problem on stderr,
nothing on stdout), 1 unexpected internal error (a short message, never a traceback).

Only Typer and the standard library are imported at module level: pydantic, Rich and icalendar
are loaded inside the commands that use them, so ``b12plan --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    import datetime as dt

    from rich.console import Console, RenderableType

    from b12plan.core.assessment import Assessment
    from b12plan.core.knowledge import Knowledge
    from b12plan.core.model import Case

EXIT_INTERNAL = 1
EXIT_INVALID = 2

P = ParamSpec("P")
R = TypeVar("R")


class InputError(Exception):
    """Invalid input: each line names what is wrong (``loc: msg``); exit code 2."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Map failures onto the contract's exit codes, with a message and no traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            sys.stdout.flush()
            for line in exc.lines:
                sys.stderr.write(line + "\n")
            raise typer.Exit(EXIT_INVALID) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            raise typer.Exit(EXIT_INTERNAL) from None
        except Exception as exc:
            sys.stderr.write(f"b12plan: internal error ({type(exc).__name__}): {exc}\n")
            raise typer.Exit(EXIT_INTERNAL) from None

    return run


# --- shared steps -----------------------------------------------------------------------------


def _knowledge() -> Knowledge:
    from b12plan.knowledge import load_knowledge

    return load_knowledge()


def _read_case_text(source: str) -> tuple[str, str]:
    """The case text and a name for messages; ``-`` is stdin."""
    if source == "-":
        try:
            return sys.stdin.read(), "stdin"
        except UnicodeDecodeError:
            raise InputError(["stdin: not UTF-8 text"]) from None
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), source
    except UnicodeDecodeError:
        raise InputError([f"{source}: not UTF-8 text"]) from None
    except OSError as exc:
        raise InputError([f"{source}: cannot read ({exc.strerror or exc})"]) from None


def load_case(source: str, knowledge: Knowledge) -> Case:
    """Read and validate a case file (or stdin); ``InputError`` names every problem."""
    from b12plan.contract import CaseError, parse_case_json

    text, name = _read_case_text(source)
    try:
        return parse_case_json(text, knowledge)
    except CaseError as exc:
        raise InputError([f"{e['loc'] or name}: {e['msg']}" for e in exc.errors]) from None


def _evaluation_date(case: Case, as_of: str | None) -> dt.date:
    """The case's own ``as_of``, or ``--as-of`` (which replays the case as known on that day)."""
    if as_of is None:
        return case.as_of
    from b12plan.contract import parse_iso_date

    try:
        day = parse_iso_date(as_of)
    except ValueError as exc:
        raise InputError([f"--as-of: {exc}"]) from None
    birth = case.patient.birth_date
    if birth is not None and day < birth:
        raise InputError(
            [f"--as-of: {day.isoformat()} is before the birth date {birth.isoformat()}"]
        )
    return day


def assess_case(case: Case, knowledge: Knowledge, as_of: dt.date) -> Assessment:
    from b12plan.core import evaluate

    return evaluate(case, knowledge, as_of=as_of)


def _write_json(value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


def _emit(renderable: RenderableType) -> None:
    from b12plan.cli.render import emit

    emit(renderable)


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


@_guarded
def assess(case_file: CaseArg, as_json: JsonOpt = False, as_of: AsOfOpt = None) -> None:
    """Assess a case: deficiency, phase, regimen, next dose window, schedule and findings.

    Exit 0 when assessed (even with critical findings), 2 when the case is invalid.
    """
    knowledge = _knowledge()
    case = load_case(case_file, knowledge)
    assessment = assess_case(case, knowledge, _evaluation_date(case, as_of))
    if as_json:
        _write_json(assessment.to_dict())
        return
    from b12plan.cli.render import assessment_view

    _emit(assessment_view(assessment, patient_id=case.patient.id))


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
) -> None:
    """The planned doses (and monitoring) of a case, as a table or an iCalendar file."""
    knowledge = _knowledge()
    case = load_case(case_file, knowledge)
    assessment = assess_case(case, knowledge, _evaluation_date(case, as_of))
    if ics is None:
        from b12plan.cli.render import schedule_view

        _emit(schedule_view(assessment, patient_id=case.patient.id))
        return
    from b12plan.calendar import assessment_calendar

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
def protocols(as_json: JsonOpt = False) -> None:
    """The injection protocols in the knowledge base, with their sources."""
    knowledge = _knowledge()
    if as_json:
        _write_json([_protocol_dict(knowledge, p.id) for p in knowledge.protocols])
        return
    from b12plan.cli.render import protocols_view

    _emit(protocols_view(knowledge))


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
) -> None:
    """What a finding code means: severity, rule, advice, message and source."""
    knowledge = _knowledge()
    wanted = code.strip().upper()
    spec = next((f for f in knowledge.findings if f.code == wanted), None)
    if spec is None:
        known = ", ".join(sorted(f.code for f in knowledge.findings))
        raise InputError([f"CODE: unknown finding code {code!r}; known codes: {known}"])
    if as_json:
        _write_json(
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

    _emit(explain_view(knowledge, spec))


def run_core_demo(console: Console | None = None) -> int:
    """Assess every shipped example case and print each; returns how many were shown.

    Kept apart from the ``demo`` command so a larger demo (database, server) can call it. Prints
    to ``console`` when given, else to stdout (styled on a terminal, plain text otherwise).
    """
    from rich.console import Group
    from rich.rule import Rule

    from b12plan.cli.render import assessment_view
    from b12plan.contract import parse_case_json
    from b12plan.examples import example_cases

    knowledge = _knowledge()
    shown = 0
    for example in example_cases():
        case = parse_case_json(example.text, knowledge)
        assessment = assess_case(case, knowledge, case.as_of)
        view = Group(
            Rule(f"{example.title}  ({example.name})"),
            assessment_view(assessment, patient_id=case.patient.id, title=example.title),
        )
        if console is not None:
            console.print(view)
        else:
            _emit(view)
        shown += 1
    return shown


@_guarded
def demo() -> None:
    """Assess the shipped example cases (a tour of the findings) and print each."""
    run_core_demo()


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def register_core_commands(app: typer.Typer) -> None:
    """Add these commands to the ``b12plan`` app (called once from ``b12plan.cli``)."""
    app.command("assess")(assess)
    app.command("schedule")(schedule)
    app.command("protocols")(protocols)
    app.command("explain")(explain)
    app.command("demo")(demo)
