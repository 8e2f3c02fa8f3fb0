"""The records commands: db upgrade, clinics/users add, seed-demo, import and export.

Run in-process through Typer's runner; ``b12plan serve`` runs as a real process in
``test_crash_durability``. Bad input exits 2 and names the field.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from b12plan.cli import app
from b12plan.contract import parse_case
from b12plan.knowledge import load_knowledge
from b12plan.store import head_revision

DAY = "2026-06-01"


Run = Callable[..., Any]  # run("db", "upgrade", stdin=None) -> the runner's result


def runner_on(path: Path) -> Run:
    """``b12plan ARGS`` on one SQLite file, with today pinned."""
    url = f"sqlite:///{path}"
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Any:
        return runner.invoke(
            app,
            list(args),
            input=stdin,
            env={"B12PLAN_DATABASE_URL": url, "B12PLAN_TODAY": DAY},
        )

    return invoke


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """The CLI on this test's own, empty database."""
    return runner_on(tmp_path / "cli.db")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One ``b12plan seed-demo`` run (its file and its result), shared by the module."""
    path = tmp_path_factory.mktemp("cli-seeded") / "cli.db"
    return path, runner_on(path)("seed-demo")


@pytest.fixture
def run_seeded(seeded: tuple[Path, Any], tmp_path: Path) -> Run:
    """The CLI on this test's own copy of the seeded database."""
    source, _ = seeded
    copy = tmp_path / "cli.db"
    for suffix in ("", "-wal", "-shm"):
        if source.with_name(source.name + suffix).exists():
            shutil.copyfile(
                source.with_name(source.name + suffix), copy.with_name(copy.name + suffix)
            )
    return runner_on(copy)


def test_a_fresh_database_is_refused_until_upgraded(run: Run) -> None:
    refused = run("clinics", "add", "north", "North clinic")
    assert refused.exit_code == 2
    assert "b12plan db upgrade" in refused.output
    upgraded = run("db", "upgrade")
    head = head_revision()
    assert upgraded.exit_code == 0 and f"revision {head} (head)" in upgraded.output
    assert f"current: {head}  head: {head}" in run("db", "current").output


def test_users_are_added_with_their_clinic_and_bad_input_names_the_field(run: Run) -> None:
    run("db", "upgrade")
    assert run("clinics", "add", "north", "North clinic").exit_code == 0
    added = run(
        "users",
        "add",
        "dr.north",
        "--clinic",
        "north",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert added.exit_code == 0, added.output
    assert "user dr.north added (clinician, clinic north)" in added.output

    bad_name = run(
        "users",
        "add",
        "Dr North",
        "--clinic",
        "north",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert bad_name.exit_code == 2 and bad_name.output.startswith("USERNAME:")
    nowhere = run(
        "users",
        "add",
        "dr.south",
        "--clinic",
        "south",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert nowhere.exit_code == 2 and "clinic_id: unknown clinic 'south'" in nowhere.output
    short = run("users", "add", "dr.west", "--clinic", "north", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "password" in short.output
    bad_clinic = run("clinics", "add", "no spaces", "X")
    assert bad_clinic.exit_code == 2 and bad_clinic.output.startswith("CLINIC_ID:")


def test_seed_demo_prints_the_sign_ins_and_can_run_twice(
    seeded: tuple[Path, Any], run_seeded: Run
) -> None:
    _, first = seeded
    assert first.exit_code == 0, first.output
    for line in (
        "dr.demo       password demo-clinician",
        "pat.demo      password demo-patient",
        "admin.demo    password demo-administrator",
        "carer.demo    password demo-carer-2026 carer of patient demo-01",
    ):
        assert line in first.output
    assert "patient demo-01" in first.output
    assert f"demo data as of {DAY}" in first.output
    again = run_seeded("seed-demo")
    assert again.exit_code == 0 and "added" not in again.output


def test_export_and_import_round_trip_through_fhir(run_seeded: Run, tmp_path: Path) -> None:
    run = run_seeded
    bundle_file = tmp_path / "demo-03.json"
    exported = run("export", "demo-03", "-o", str(bundle_file))
    assert exported.exit_code == 0, exported.output
    bundle = json.loads(bundle_file.read_text())
    assert bundle["resourceType"] == "Bundle"

    imported = run("import", str(bundle_file), "--clinic", "demo-clinic", "--patient-id", "copy-03")
    assert imported.exit_code == 0, imported.output
    assert "imported patient copy-03" in imported.output
    original = json.loads(run("export", "demo-03", "--format", "case").output)
    copy = json.loads(run("export", "copy-03", "--format", "case").output)
    knowledge = load_knowledge()
    assert original["patient"].pop("id") == "demo-03"
    assert copy["patient"].pop("id") == "copy-03"
    assert parse_case(copy, knowledge) == parse_case(original, knowledge)

    again = run("import", str(bundle_file), "--clinic", "demo-clinic", "--patient-id", "copy-03")
    assert again.exit_code == 2 and "already exists" in again.output


def test_import_and_export_refuse_bad_input_by_name(run_seeded: Run, tmp_path: Path) -> None:
    run = run_seeded
    case = {
        "schema_version": 1,
        "as_of": DAY,
        "observations": [{"code": "b12_total", "date": DAY, "value": 98, "unit": "pmol"}],
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(case))
    refused = run("import", str(bad), "--clinic", "demo-clinic")
    assert refused.exit_code == 2
    assert refused.output.startswith("observations[0].unit: unknown unit 'pmol'")
    assert run("import", str(bad)).output.startswith("--clinic: required")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert run("import", str(broken), "--clinic", "demo-clinic").exit_code == 2
    missing = run("export", "nobody")
    assert missing.exit_code == 2 and "no patient 'nobody'" in missing.output
    assert run("export", "demo-01", "--as-of", "01/06/2026").output.startswith("--as-of:")
    assert run("export", "demo-01", "--format", "xml").output.startswith("--format:")
    wrong_url = run("db", "upgrade", "--database-url", "mysql://somewhere/db")
    assert wrong_url.exit_code == 2 and wrong_url.output.startswith("database_url:")


EHR = Path(__file__).parents[1] / "fhir" / "ehr"


def test_a_us_export_is_imported_with_each_left_out_item_on_stderr(
    run_seeded: Run, tmp_path: Path
) -> None:
    """A "QNS" result and a lab under a local code are left out and named, not fatal."""
    run = run_seeded
    imported = run(
        "import",
        str(EHR / "us-core-dayton.json"),
        "--clinic",
        "demo-clinic",
        "--patient-id",
        "oh-1",
    )
    assert imported.exit_code == 0, imported.output
    assert "imported patient oh-1" in imported.output
    assert "warning: entry[7].resource.valueString: not a quantity (valueString 'QNS')" in (
        imported.output
    )
    assert "warning: entry[8].resource.code: no LOINC code" in imported.output
    case = json.loads(run("export", "oh-1", "--format", "case").output)
    assert case["jurisdiction"] == "US"
    assert {m["code"] for m in case["medications"]} == {"metformin", "ppi"}


def test_the_default_jurisdiction_survives_a_database_url_option(
    seeded: tuple[Path, Any], tmp_path: Path
) -> None:
    """``--database-url`` replaces the URL only: B12PLAN_DEFAULT_JURISDICTION still applies."""
    source, _ = seeded
    copy = tmp_path / "cli.db"
    for suffix in ("", "-wal", "-shm"):
        if source.with_name(source.name + suffix).exists():
            shutil.copyfile(
                source.with_name(source.name + suffix), copy.with_name(copy.name + suffix)
            )
    bundle = json.loads((EHR / "synthea-deceased-boston.json").read_text(encoding="utf-8"))
    del bundle["entry"][0]["resource"]["address"]
    file = tmp_path / "no-address.json"
    file.write_text(json.dumps(bundle))
    env = {"B12PLAN_TODAY": DAY, "B12PLAN_DEFAULT_JURISDICTION": "US"}
    url = ["--database-url", f"sqlite:///{copy}"]
    runner = CliRunner()
    result = runner.invoke(
        app, ["import", str(file), "--clinic", "demo-clinic", "--patient-id", "ma-1", *url], env=env
    )
    assert result.exit_code == 0, result.output
    exported = runner.invoke(app, ["export", "ma-1", "--format", "case", *url], env=env)
    assert json.loads(exported.output)["jurisdiction"] == "US"
