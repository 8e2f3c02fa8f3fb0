"""``b12plan assess`` as a process: exit codes, JSON that is the core's, errors that name fields."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge

from .conftest import EXAMPLES, Run, assert_clean_failure

NEURO = EXAMPLES / "01-pa-neuro-loading.json"


def expected(path: Path, knowledge: Knowledge, as_of: dt.date | None = None) -> Any:
    case = parse_case(json.loads(path.read_text(encoding="utf-8")), knowledge)
    return evaluate(case, knowledge, as_of=as_of or case.as_of).to_dict()


def test_json_output_is_the_core_assessment(run_cli: Run, knowledge: Knowledge) -> None:
    result = run_cli("assess", str(NEURO), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == expected(NEURO, knowledge)
    assert result.stdout.startswith('{\n  "schema_version": 1,')  # indent 2, contract key order


def test_stdin_dash_reads_the_case(run_cli: Run, knowledge: Knowledge) -> None:
    result = run_cli("assess", "-", "--json", input=NEURO.read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected(NEURO, knowledge)


def test_as_of_replays_the_case_on_an_earlier_day(run_cli: Run, knowledge: Knowledge) -> None:
    result = run_cli("assess", str(NEURO), "--json", "--as-of", "2026-01-12")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["as_of"] == "2026-01-12"
    assert got == expected(NEURO, knowledge, dt.date(2026, 1, 12))
    assert got != expected(NEURO, knowledge)


def test_human_output_is_plain_text_when_piped(run_cli: Run) -> None:
    result = run_cli("assess", str(EXAMPLES / "06-stopped-lifelong.json"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # no colour codes in a pipe
    for text in (
        "demo-06",
        "2025-06-01",
        "Deficiency",
        "confirmed",
        "Phase",
        "stopped",
        "gb-hydroxocobalamin-non-neuro",
        "hydroxocobalamin 1 mg IM",
        "Next dose",
        "Schedule",
        "WARNING",
        "STOPPED_LIFELONG_THERAPY",
    ):
        assert text in out
    assert all(line == line.rstrip() for line in out.splitlines())


def test_invalid_unit_exits_2_naming_the_field(run_cli: Run, tmp_path: Path) -> None:
    case = json.loads(NEURO.read_text(encoding="utf-8"))
    case["observations"][2]["unit"] = "pmol"
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case), encoding="utf-8")
    result = run_cli("assess", str(path), "--json")
    assert_clean_failure(result, 2)
    assert result.stderr.startswith("observations[2].unit: unknown unit 'pmol'")


def test_every_problem_is_one_stderr_line(run_cli: Run) -> None:
    case = {
        "schema_version": 1,
        "as_of": "2026-03-01",
        "colour": "red",
        "administrations": [
            {
                "date": "2026-01-05",
                "product": "hydroxocobalamin",
                "dose": -1,
                "unit": "mg",
                "route": "IM",
            }
        ],
    }
    result = run_cli("assess", "-", input=json.dumps(case))
    assert_clean_failure(result, 2)
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == ["administrations[0].dose", "colour"]


def test_malformed_json_exits_2(run_cli: Run) -> None:
    result = run_cli("assess", "-", input='{"schema_version": 1, "as_of": ')
    assert_clean_failure(result, 2)
    assert result.stderr.startswith("stdin: invalid JSON at line 1")


def test_missing_file_exits_2(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("assess", str(tmp_path / "absent.json"))
    assert_clean_failure(result, 2)
    assert "absent.json: cannot read" in result.stderr


def test_bad_as_of_exits_2(run_cli: Run) -> None:
    result = run_cli("assess", str(NEURO), "--as-of", "12/01/2026")
    assert_clean_failure(result, 2)
    assert result.stderr.startswith("--as-of: expected a date as 'YYYY-MM-DD'")


def test_help_does_not_load_pydantic(run_cli: Run) -> None:
    """Start-up stays fast: the heavy libraries load only in the commands that use them."""
    probe = (
        "import sys\n"
        "sys.argv = ['b12plan', '--help']\n"
        "from b12plan.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('pydantic', 'icalendar', 'b12plan.contract')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
