"""The records store as population tables: the SQL worklist gives each stored patient the codes the
service's own assessment gives, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from b12plan.app import Services
from b12plan.cli import app
from b12plan.contract import CaseError
from b12plan.population.engines import DuckDBEngine
from b12plan.population.plan import build_plan
from b12plan.service import Principal
from b12plan.service import cohort as cohort_module
from b12plan.service.cohort import CohortExportError, UnknownClinic, export_cohort
from b12plan.service.demo import shift_dates
from b12plan.service.schemas import KINDS, NewClinic
from tests.population.conftest import codes_by_patient, covered
from tests.scenario_support import load_scenarios
from tests.store.support import (
    Staff,
    build_staff,
    make_services,
    postgres_database,
    sqlite_database,
    uid,
)

DAY = dt.date(2027, 6, 1)  # every scenario is moved so that its as_of lands here
LATER = dt.datetime(2028, 1, 1, 12, tzinfo=dt.UTC)  # the store's clock: after every record
SYSTEM = Principal.system("tests")
runner = CliRunner()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A store of its own: the export reads every patient in it."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path_factory.mktemp("cohort-store")) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(scope="module")
def stored(store_url: str) -> Iterator[tuple[Services, Staff]]:
    """Every scenario stored as a patient of one clinic, its dates moved onto ``DAY``."""
    services = make_services(store_url, now=LATER)
    staff = build_staff(services)
    for scenario in load_scenarios():
        document = scenario["case"]
        days = (DAY - dt.date.fromisoformat(document["as_of"])).days
        services.records.import_case(
            SYSTEM,
            shift_dates(document, days),
            clinic_id=staff.clinic,
            patient_id=f"sc-{scenario['id']}"[:64],
        )
    yield services, staff
    services.db.dispose()


def worklist_codes(directory: Path, services: Services) -> dict[str, frozenset[str]]:
    engine = DuckDBEngine(directory)
    try:
        table = engine.run(build_plan(services.knowledge, DAY, "duckdb"))
    finally:
        engine.close()
    return codes_by_patient(table)


def test_each_stored_patient_gets_the_codes_the_service_assessment_gives(
    stored: tuple[Services, Staff], tmp_path: Path
) -> None:
    services, staff = stored
    result = export_cohort(services.db, services.knowledge, tmp_path, as_of=DAY)
    patient_ids = pq.read_table(tmp_path / "patients.parquet")["patient_id"].to_pylist()
    assert result.patients == len(patient_ids)
    assert {f"sc-{s['id']}"[:64] for s in load_scenarios()} <= set(patient_ids)
    assert result.without_demographics == 0

    sql = worklist_codes(tmp_path, services)
    service = {
        pid: covered(services.records.assess_patient(staff.admin, pid, as_of=DAY).codes())
        for pid in patient_ids
    }
    assert sum(bool(c) for c in service.values()) > 40  # the scenarios do fire the rules
    assert {pid: sql.get(pid, frozenset()) for pid in patient_ids} == service


def test_one_clinic_only(stored: tuple[Services, Staff], tmp_path: Path) -> None:
    services, staff = stored
    result = export_cohort(
        services.db, services.knowledge, tmp_path, as_of=DAY, clinic_id=staff.other_clinic
    )
    patients = pq.read_table(tmp_path / "patients.parquet").to_pylist()
    assert result.patients == 1
    assert [(p["patient_id"], p["clinic_id"]) for p in patients] == [
        (staff.far_patient_id, staff.other_clinic)
    ]
    with pytest.raises(UnknownClinic):
        export_cohort(services.db, services.knowledge, tmp_path, as_of=DAY, clinic_id="nowhere")


def test_an_entered_in_error_record_is_left_out(
    stored: tuple[Services, Staff], tmp_path: Path
) -> None:
    services, staff = stored
    scenario = next(s for s in load_scenarios() if len(s["case"].get("observations", [])) >= 2)
    pid, clinic = uid("eie"), uid("clinic")
    services.auth.add_clinic(SYSTEM, NewClinic(id=clinic, name="Retractions"))
    document = scenario["case"]
    days = (DAY - dt.date.fromisoformat(document["as_of"])).days
    services.records.import_case(
        SYSTEM, shift_dates(document, days), clinic_id=clinic, patient_id=pid
    )

    def observations() -> int:
        export_cohort(services.db, services.knowledge, tmp_path, as_of=DAY, clinic_id=clinic)
        keys = {
            p["patient_key"]
            for p in pq.read_table(tmp_path / "patients.parquet").to_pylist()
            if p["patient_id"] == pid
        }
        rows = pq.read_table(tmp_path / "observations.parquet")["patient_key"].to_pylist()
        return sum(key in keys for key in rows)

    before = observations()
    kind = KINDS["observations"]
    wrong = services.records.list_records(staff.admin, pid, kind)[0]
    services.records.retract_record(
        staff.admin, pid, kind, wrong.id, expected_version=wrong.version, reason="wrong patient"
    )
    assert before == len(document["observations"])
    assert observations() == before - 1


def test_a_failed_export_leaves_the_earlier_tables_as_they_were(
    stored: tuple[Services, Staff], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, _ = stored
    export_cohort(services.db, services.knowledge, tmp_path, as_of=DAY)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def no_longer_valid(record: object, as_of: object, knowledge: object) -> None:
        raise CaseError([{"loc": "observations[0].unit", "msg": "unknown unit", "type": "unit"}])

    monkeypatch.setattr(cohort_module, "stored_case", no_longer_valid)
    with pytest.raises(CohortExportError, match=r"observations\[0\]\.unit: unknown unit"):
        export_cohort(services.db, services.knowledge, tmp_path, as_of=DAY)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_cli_writes_the_tables_and_names_a_bad_clinic(
    stored: tuple[Services, Staff], store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "cohort"
    _, staff = stored
    args = ["population", "from-store", "--database-url", store_url, "--out", str(out)]
    result = runner.invoke(app, [*args, "--as-of", DAY.isoformat(), "--clinic", staff.clinic])
    assert result.exit_code == 0, result.output
    assert f"wrote {len(load_scenarios()):,} patients" in result.output
    assert (out / "administrations.parquet").is_file()

    bad = runner.invoke(app, [*args, "--clinic", "nowhere"])
    assert bad.exit_code == 2
    assert "--clinic" in bad.output and "does not exist" in bad.output

    bad_date = runner.invoke(app, [*args, "--as-of", "June"])
    assert bad_date.exit_code == 2
    assert "--as-of" in bad_date.output
