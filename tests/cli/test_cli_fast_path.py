"""``b12plan assess`` without Typer: the same output, errors and exit codes as the Typer command.

``b12plan.cli.main`` runs ``assess`` in its plain documented forms without importing Typer (start
-up: ADR 0058) and leaves every other form to Typer. Each case below runs twice as a real
process, once through ``main`` and once through the Typer app directly, and the two must agree
byte for byte; a second table checks which argument lists are left to Typer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from b12plan.cli.steps import AssessArgs, parse_assess_argv
from tests.knowledge_copy import CLINIC_VERSION, clinic_copy

from .conftest import EXAMPLES, Run

NEURO = str(EXAMPLES / "01-pa-neuro-loading.json")
TYPER_ONLY = "import sys; sys.argv[0] = 'b12plan'; from b12plan.cli import app; app()"
HEAVY = (
    "typer",
    "click",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "duckdb",
    "pyarrow",
    "pyspark",
    "fhir",
    "plotly",
    "icalendar",
    "jinja2",
    "httpx",
    "uvicorn",
    "psycopg",
)


@pytest.fixture(scope="module")
def clinic_knowledge(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(clinic_copy(tmp_path_factory.mktemp("riverside") / "knowledge"))


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without colour or a knowledge copy, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "B12PLAN_KNOWLEDGE_DIR")}
    return {**env, "COLUMNS": "100", "NO_COLOR": "1", **extra}


def _both(
    args: list[str], *, input: str | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """The same arguments through ``main`` (the script) and through the Typer app alone."""
    script = Path(sys.executable).parent / "b12plan"
    main = [str(script)] if script.exists() else [sys.executable, "-m", "b12plan"]
    runs = []
    for command in (main, [sys.executable, "-c", TYPER_ONLY]):
        runs.append(
            subprocess.run(
                [*command, "assess", *args],
                input=input,
                capture_output=True,
                text=True,
                encoding="utf-8",
                env=env or _env(),
                timeout=60,
                check=False,
            )
        )
    return runs[0], runs[1]


def _same(fast: subprocess.CompletedProcess[str], typer: subprocess.CompletedProcess[str]) -> None:
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        typer.returncode,
        typer.stdout,
        typer.stderr,
    )


CASES = {
    "json": ([NEURO, "--json"], None, 0),
    "rendered-for-a-person": ([NEURO], None, 0),
    "option-before-the-case": (["--json", NEURO], None, 0),
    "stdin": (["-", "--json"], Path(NEURO).read_text(encoding="utf-8"), 0),
    "as-of-replay": ([NEURO, "--json", "--as-of", "2026-01-12"], None, 0),
    "as-of-with-equals": ([NEURO, "--as-of=2026-01-12"], None, 0),
    "last-as-of-wins": ([NEURO, "--as-of", "1950-01-01", "--as-of", "2026-01-12"], None, 0),
    "json-twice": ([NEURO, "--json", "--json"], None, 0),
    "as-of-not-a-date": ([NEURO, "--as-of", "12/01/2026"], None, 2),
    "as-of-before-birth": ([NEURO, "--as-of", "1950-01-01"], None, 2),
    "as-of-empty": ([NEURO, "--as-of="], None, 2),
    "no-such-file": (["no-such-case.json", "--json"], None, 2),
    "malformed-json": (["-", "--json"], '{"schema_version": 1, "as_of": ', 2),
    "a-folder-not-a-file": ([str(EXAMPLES)], None, 2),
    "no-such-knowledge-dir": ([NEURO, "--knowledge-dir", "no-such-knowledge"], None, 2),
}


@pytest.mark.parametrize(("args", "stdin", "code"), CASES.values(), ids=CASES.keys())
def test_assess_without_typer_answers_as_the_typer_command_does(
    args: list[str], stdin: str | None, code: int
) -> None:
    fast, typer = _both(args, input=stdin)
    assert fast.returncode == code, fast.stderr
    assert "Traceback" not in fast.stderr
    _same(fast, typer)


def test_a_clinics_knowledge_copy_by_option_or_environment(clinic_knowledge: str) -> None:
    by_option = _both([NEURO, "--json", "--knowledge-dir", clinic_knowledge])
    by_option_equals = _both([NEURO, "--json", f"--knowledge-dir={clinic_knowledge}"])
    by_env = _both([NEURO, "--json"], env=_env(B12PLAN_KNOWLEDGE_DIR=clinic_knowledge))
    for fast, typer in (by_option, by_option_equals, by_env):
        _same(fast, typer)
        assert fast.returncode == 0, fast.stderr
        assert json.loads(fast.stdout)["knowledge_version"] == CLINIC_VERSION


def test_the_option_wins_over_the_environment(clinic_knowledge: str) -> None:
    fast, typer = _both(
        [NEURO, "--json", "--knowledge-dir", clinic_knowledge],
        env=_env(B12PLAN_KNOWLEDGE_DIR="no-such-knowledge"),
    )
    _same(fast, typer)
    assert json.loads(fast.stdout)["knowledge_version"] == CLINIC_VERSION


def test_a_bad_knowledge_copy_in_the_environment_exits_2_naming_the_variable() -> None:
    fast, typer = _both([NEURO, "--json"], env=_env(B12PLAN_KNOWLEDGE_DIR="no-such-knowledge"))
    _same(fast, typer)
    assert fast.returncode == 2
    assert fast.stdout == ""
    assert fast.stderr == "B12PLAN_KNOWLEDGE_DIR: no-such-knowledge: no such directory\n"


def test_an_incomplete_copy_names_the_missing_file(tmp_path: Path) -> None:
    copy = clinic_copy(tmp_path / "knowledge")
    (copy / "findings.toml").unlink()
    fast, typer = _both([NEURO, "--knowledge-dir", str(copy)])
    _same(fast, typer)
    assert fast.returncode == 2
    assert fast.stderr.startswith(f"--knowledge-dir: {copy / 'findings.toml'}: missing")


@pytest.mark.parametrize(
    "args",
    [
        ["assess", "--help"],
        ["assess"],
        ["assess", NEURO, "--bogus"],
        ["assess", NEURO, "--as-of"],
        ["assess", NEURO, "--json=yes"],
        ["assess", NEURO, "extra.json"],
        ["assess", "--", NEURO],
    ],
    ids=["help", "no-case", "unknown-option", "missing-value", "flag-with-value", "two", "dashes"],
)
def test_help_and_mistakes_are_left_to_typer(run_cli: Run, args: list[str]) -> None:
    assert parse_assess_argv(args) is None
    fast, typer = _both(args[1:])
    assert fast.stdout == typer.stdout
    assert fast.returncode == typer.returncode
    assert fast.stderr == typer.stderr


def test_help_shows_the_knowledge_option(run_cli: Run) -> None:
    result = run_cli("assess", "--help")
    assert result.returncode == 0
    assert "--knowledge-dir DIR" in result.stdout
    assert "B12PLAN_KNOWLEDGE_DIR" in result.stdout


@pytest.mark.parametrize(
    ("argv", "parsed"),
    [
        (["assess", "c.json"], AssessArgs("c.json")),
        (["assess", "-", "--json"], AssessArgs("-", as_json=True)),
        (
            ["assess", "--as-of", "2026-01-01", "c.json", "--knowledge-dir=k"],
            AssessArgs("c.json", as_of="2026-01-01", knowledge_dir="k"),
        ),
        (["assess", "a=b.json"], AssessArgs("a=b.json")),
        (["assess", "c.json", "--as-of", "-1"], None),
        (["schedule", "c.json"], None),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_forms_run_without_typer(argv: list[str], parsed: AssessArgs | None) -> None:
    assert parse_assess_argv(argv) == parsed


def _loaded_after(argv: list[str]) -> list[str]:
    probe = (
        "import atexit, json, sys\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: print(json.dumps(sorted(m for m in sys.modules"
        " if m.split('.')[0] in heavy))))\n"
        f"sys.argv = ['b12plan', *{argv!r}]\n"
        "from b12plan.cli import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_assess_loads_none_of_the_heavy_libraries() -> None:
    assert _loaded_after(["assess", NEURO, "--json"]) == []
    assert _loaded_after(["assess", NEURO]) == []  # Rich, but not Typer, click or the rest


def test_other_commands_still_go_through_typer() -> None:
    assert "typer" in _loaded_after(["protocols", "--json"])


def _plugin_scan_after(argv: list[str], **env: str) -> tuple[bool, str | None]:
    """Whether pydantic scanned the installed packages for plugins while ``main`` ran ``argv``,
    and the plugin setting the process ended with."""
    probe = (
        "import atexit, json, os, sys\n"
        "def report():\n"
        "    loader = sys.modules.get('pydantic.plugin._loader')\n"
        "    scanned = loader is not None and loader._plugins is not None\n"
        "    print(json.dumps([scanned, os.environ.get('PYDANTIC_DISABLE_PLUGINS')]))\n"
        "atexit.register(report)\n"
        f"sys.argv = ['b12plan', *{argv!r}]\n"
        "from b12plan.cli import main\n"
        "main()\n"
    )
    base = {k: v for k, v in _env().items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**base, **env},
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    scanned, setting = json.loads(result.stdout.strip().splitlines()[-1])
    return scanned, setting


def test_assess_skips_pydantics_plugin_scan_unless_told_otherwise() -> None:
    assert _plugin_scan_after(["assess", NEURO, "--json"]) == (False, "__all__")
    # An explicit value is the caller's: empty enables every installed plugin again.
    assert _plugin_scan_after(["assess", NEURO, "--json"], PYDANTIC_DISABLE_PLUGINS="") == (
        True,
        "",
    )


def test_other_commands_keep_pydantics_plugin_default() -> None:
    assert _plugin_scan_after(["protocols", "--json"])[1] is None
