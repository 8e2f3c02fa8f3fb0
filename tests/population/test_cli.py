"""``b12plan population``: generate, run, summarise; bad options exit 2 and name the option."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from b12plan.cli import app
from b12plan.knowledge import load_knowledge
from b12plan.population.engines import DuckDBEngine
from b12plan.population.plan import build_due_plan
from b12plan.population.tables import DUE_SCHEMA
from b12plan.population.worklist import read_worklist

runner = CliRunner()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "cohort"
    result = runner.invoke(
        app, ["population", "generate", "--patients", "400", "--out", str(out), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "400 patients" in result.output
    return out


def test_run_writes_the_worklist_and_summary_counts_it(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "worklist.parquet"
    result = runner.invoke(
        app,
        ["population", "run", "--input", str(cohort), "--as-of", "2026-03-01", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows > 0
    assert set(table["as_of"].to_pylist()) == {__import__("datetime").date(2026, 3, 1)}
    assert "NO_PRETREATMENT_TEST" in result.output

    summary = runner.invoke(app, ["population", "summary", str(out)])
    assert summary.exit_code == 0, summary.output
    assert "clinics" in summary.output

    csv = tmp_path / "worklist.csv"
    again = runner.invoke(
        app,
        [
            "population",
            "run",
            "--input",
            str(cohort),
            "--as-of",
            "2026-03-01",
            "--out",
            str(csv),
            "--codes",
            "injection_overdue,NO_PRETREATMENT_TEST",
            "--show",
            "0",
        ],
    )
    assert again.exit_code == 0, again.output
    picked = read_worklist(csv)
    assert set(picked["code"].to_pylist()) == {"INJECTION_OVERDUE", "NO_PRETREATMENT_TEST"}


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", "--as-of", "2026-03-01", "--out", "w.parquet"], "--input"),
        (["run", "--input", "{cohort}", "--as-of", "1 March", "--out", "w.parquet"], "--as-of"),
        (["run", "--input", "{cohort}", "--as-of", "2026-03-01", "--out", "w.txt"], "--out"),
        (
            [
                "run",
                "--input",
                "{cohort}",
                "--as-of",
                "2026-03-01",
                "--out",
                "w.parquet",
                "--engine",
                "oracle",
            ],
            "--engine",
        ),
        (
            [
                "run",
                "--input",
                "{cohort}",
                "--as-of",
                "2026-03-01",
                "--out",
                "w.parquet",
                "--codes",
                "NOT_A_CODE",
            ],
            "--codes",
        ),
        (
            ["run", "--engine", "postgres", "--as-of", "2026-03-01", "--out", "w.parquet"],
            "--database-url",
        ),
        (["run", "--input", "{empty}", "--as-of", "2026-03-01", "--out", "w.parquet"], "--input"),
        (["run", "--input", "{missing}", "--as-of", "2026-03-01", "--out", "w.parquet"], "--input"),
        (["generate", "--patients", "0", "--out", "{empty}"], "--patients"),
        (["summary", "{missing}"], "WORKLIST"),
        (["sql", "--as-of", "2026-03-01", "--dialect", "oracle"], "--dialect"),
        (
            [
                "due",
                "--input",
                "{cohort}",
                "--as-of",
                "2026-03-01",
                "--out",
                "w.parquet",
                "--days",
                "-1",
            ],
            "--days",
        ),
        (["due", "--input", "{cohort}", "--as-of", "2026-03-01", "--out", "w.txt"], "--out"),
        (["due", "--as-of", "2026-03-01", "--out", "w.parquet"], "--input"),
        (["due", "--input", "{cohort}", "--as-of", "1 March", "--out", "w.parquet"], "--as-of"),
        (
            ["due", "--engine", "postgres", "--as-of", "2026-03-01", "--out", "w.parquet"],
            "--database-url",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    args: list[str], option: str, cohort: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    filled = [
        a.format(cohort=cohort, empty=tmp_path / "empty", missing=tmp_path / "nope.parquet")
        for a in args
    ]
    filled = [str(tmp_path / a) if a in ("w.parquet", "w.txt") else a for a in filled]
    result = runner.invoke(app, ["population", *filled])
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output


def test_sql_prints_the_rules_for_postgres() -> None:
    result = runner.invoke(
        app, ["population", "sql", "--as-of", "2026-03-01", "--dialect", "postgres"]
    )
    assert result.exit_code == 0, result.output
    assert "-- rule_injection_overdue" in result.output
    assert "CAST('2026-03-01' AS DATE)" in result.output


def test_case_files_become_tables_the_engines_read(tmp_path: Path) -> None:
    scenarios = Path(__file__).parents[1] / "scenarios"
    out = tmp_path / "tables"
    made = runner.invoke(
        app, ["population", "from-cases", str(scenarios), "--out", str(out), "--clinic", "c9"]
    )
    assert made.exit_code == 0, made.output
    patients = pq.read_table(out / "patients.parquet")
    assert patients.num_rows == len(list(scenarios.glob("*.json")))
    assert set(patients["clinic_id"].to_pylist()) == {"c9"}
    ran = runner.invoke(
        app,
        [
            "population",
            "run",
            "--input",
            str(out),
            "--as-of",
            "2027-06-01",
            "--out",
            str(tmp_path / "w.parquet"),
            "--show",
            "0",
        ],
    )
    assert ran.exit_code == 0, ran.output


def test_an_invalid_case_file_exits_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "as_of": "2026-01-01", "colour": "blue"}')
    result = runner.invoke(app, ["population", "from-cases", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "bad.json" in result.output


def test_due_writes_the_booking_list_as_csv_and_parquet(cohort: Path, tmp_path: Path) -> None:
    """The CSV holds the engine's rows, in order; the window's days bound every due date."""
    csv = tmp_path / "due.csv"
    result = runner.invoke(
        app,
        [
            "population",
            "due",
            "--input",
            str(cohort),
            "--as-of",
            "2026-03-01",
            "--days",
            "14",
            "--out",
            str(csv),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "patients due 2026-03-01 to 2026-03-15" in result.output
    written = pacsv.read_csv(
        csv, convert_options=pacsv.ConvertOptions(column_types=DUE_SCHEMA)
    ).cast(DUE_SCHEMA)
    engine = DuckDBEngine(cohort)
    try:
        expected = engine.run(build_due_plan(load_knowledge(), date(2026, 3, 1), days=14))
    finally:
        engine.close()
    assert written.num_rows > 0
    assert written.equals(expected)
    dues = written["due"].to_pylist()
    assert dues == sorted(dues)
    assert all(date(2026, 3, 1) <= d <= date(2026, 3, 15) for d in dues)

    parquet = tmp_path / "due.parquet"
    none_today = runner.invoke(
        app,
        [
            "population",
            "due",
            "--input",
            str(cohort),
            "--as-of",
            "2026-03-01",
            "--days",
            "0",
            "--out",
            str(parquet),
            "--show",
            "0",
        ],
    )
    assert none_today.exit_code == 0, none_today.output
    today = pq.read_table(parquet)
    assert today.schema == DUE_SCHEMA
    assert set(today["due"].to_pylist()) <= {date(2026, 3, 1)}
    assert today.num_rows < written.num_rows
