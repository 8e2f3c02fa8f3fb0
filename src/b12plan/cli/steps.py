"""The steps the core commands share, and ``b12plan assess`` without Typer.

Standard library only at import time. ``b12plan assess`` is the command scripts run in loops, and
Typer (with the pydantic it loads) costs more than the assessment itself, so ``b12plan.cli.main``
first offers the arguments to ``run_assess_argv``: when they are the plain documented forms
(``assess CASE [--json] [--as-of DATE] [--knowledge-dir DIR]``) the command runs here, through
the same ``assess`` function and the same exit-code mapping as the Typer command; anything else
(``--help``, an unknown option, a missing value, another command) is left to Typer, so usage
messages and help stay Typer's own. ``tests/cli/test_cli_fast_path.py`` runs both paths.

Exit codes follow the contract: 0 assessed (whatever the findings), 2 invalid input (one
``loc: msg`` line per problem on stderr, nothing on stdout), 1 unexpected internal error (a short
message, never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datetime as dt

    from rich.console import RenderableType

    from b12plan.core.assessment import Assessment
    from b12plan.core.knowledge import Knowledge
    from b12plan.core.model import Case

EXIT_INTERNAL = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
"""What Typer exits with on Ctrl-C; the Typer-free path does the same."""


class InputError(Exception):
    """Invalid input: each line names what is wrong (``loc: msg``); exit code 2."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def exit_code_of(
    run: Callable[[], object], *, passthrough: tuple[type[BaseException], ...] = ()
) -> int:
    """Run a command; map its failures onto the exit codes, with a message and no traceback.

    The one mapping for both paths: the Typer commands pass Typer's own ``Exit``/``Abort``
    through, and turn a non-zero result into ``typer.Exit``.
    """
    try:
        run()
    except InputError as exc:
        sys.stdout.flush()
        for line in exc.lines:
            sys.stderr.write(line + "\n")
        return EXIT_INVALID
    except KeyboardInterrupt:
        raise
    except BrokenPipeError:
        return EXIT_INTERNAL
    except passthrough:
        raise
    except Exception as exc:
        sys.stderr.write(f"b12plan: internal error ({type(exc).__name__}): {exc}\n")
        return EXIT_INTERNAL
    return 0


# --- shared steps -----------------------------------------------------------------------------


def knowledge_for(knowledge_dir: str | None) -> Knowledge:
    """The knowledge base a command uses: ``--knowledge-dir``, else ``$B12PLAN_KNOWLEDGE_DIR``,
    else the shipped one. A copy that fails validation is invalid input naming its source."""
    from b12plan.knowledge import KNOWLEDGE_DIR_ENV, KnowledgeError, load_knowledge_at

    if knowledge_dir is not None:
        label, directory = "--knowledge-dir", Path(knowledge_dir)
    elif os.environ.get(KNOWLEDGE_DIR_ENV):
        label, directory = KNOWLEDGE_DIR_ENV, Path(os.environ[KNOWLEDGE_DIR_ENV])
    else:
        return load_knowledge_at(None)
    try:
        return load_knowledge_at(directory)
    except KnowledgeError as exc:
        raise InputError([f"{label}: {exc}"]) from None


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


def evaluation_date(case: Case, as_of: str | None) -> dt.date:
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


def write_json(value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


def emit(renderable: RenderableType) -> None:
    from b12plan.cli.render import emit as render_emit

    render_emit(renderable)


# --- assess -----------------------------------------------------------------------------------


def assess(case_file: str, *, as_json: bool, as_of: str | None, knowledge_dir: str | None) -> None:
    """The ``assess`` command's work, shared by the Typer command and the Typer-free path."""
    knowledge = knowledge_for(knowledge_dir)
    case = load_case(case_file, knowledge)
    assessment = assess_case(case, knowledge, evaluation_date(case, as_of))
    if as_json:
        write_json(assessment.to_dict())
        return
    from b12plan.cli.render import assessment_view

    emit(assessment_view(assessment, patient_id=case.patient.id))


@dataclass(frozen=True)
class AssessArgs:
    case_file: str
    as_json: bool = False
    as_of: str | None = None
    knowledge_dir: str | None = None


_VALUED = {"--as-of": "as_of", "--knowledge-dir": "knowledge_dir"}


def parse_assess_argv(argv: Sequence[str]) -> AssessArgs | None:
    """``assess`` arguments in the plain documented forms, or ``None`` to leave them to Typer.

    Accepted: one case path (or ``-``), ``--json``, ``--as-of DATE`` / ``--as-of=DATE`` and
    ``--knowledge-dir DIR`` / ``--knowledge-dir=DIR``, in any order, the last of a repeated
    option winning (as Typer does). Declined: ``--help`` and every other option, ``--``, a value
    that looks like an option, a missing or second case path, and shell-completion requests.
    """
    if not argv or argv[0] != "assess":
        return None
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return None
    case_file: str | None = None
    values: dict[str, str] = {}
    as_json = False
    rest = list(argv[1:])
    i = 0
    while i < len(rest):
        token = rest[i]
        name, equals, inline = token.partition("=")
        if token == "--json":
            as_json = True
        elif name in _VALUED and equals:
            values[_VALUED[name]] = inline
        elif token in _VALUED:
            if i + 1 == len(rest) or rest[i + 1].startswith("-"):
                return None
            values[_VALUED[token]] = rest[i + 1]
            i += 1
        elif token == "-" or not token.startswith("-"):
            if case_file is not None:
                return None
            case_file = token
        else:
            return None
        i += 1
    if case_file is None:
        return None
    return AssessArgs(case_file, as_json=as_json, **values)


PYDANTIC_PLUGINS_ENV = "PYDANTIC_DISABLE_PLUGINS"
"""Pydantic's documented switch. ``__all__`` spares ``assess`` the scan of every installed
package's entry points on its first validation (b12plan uses no pydantic plugin); a value the
caller set, even empty (which enables every plugin), is kept. Only this one-shot path sets it:
``b12plan serve`` and the other commands keep pydantic's default."""


def run_assess_argv(argv: Sequence[str]) -> int | None:
    """Run ``assess`` without Typer when ``argv`` allows it; the exit code, or ``None``."""
    args = parse_assess_argv(argv)
    if args is None:
        return None
    os.environ.setdefault(PYDANTIC_PLUGINS_ENV, "__all__")
    try:
        return exit_code_of(
            lambda: assess(
                args.case_file,
                as_json=args.as_json,
                as_of=args.as_of,
                knowledge_dir=args.knowledge_dir,
            )
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
