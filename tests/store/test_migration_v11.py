"""A v1 store with patients in it upgrades to contract v1.1, on SQLite and on PostgreSQL.

The v1 rows are written with plain SQL at revision 0001 (what a clinic's database holds today),
then the migrations run to head: nothing is lost, old symptom rows read as clinicians'
assessments, the new tables are append-only like the old ones, and the service reads it all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from b12plan.service import Principal
from b12plan.service.schemas import DecisionIn, SymptomIn
from b12plan.store import current_revision, head_revision, upgrade
from tests.store.support import NOW, make_services, postgres_database, sqlite_database

V1_ROWS = [
    "INSERT INTO clinics (id, name, created_at) VALUES ('north', 'North', :now)",
    "INSERT INTO patients (id, clinic_id, created_at) VALUES ('p-v1', 'north', :now)",
    "INSERT INTO users (id, username, display_name, password_hash, role, clinic_id, active,"
    " created_at) VALUES ('u-1', 'dr.north', 'Dr North', 'x', 'clinician', 'north', :yes, :now)",
    "INSERT INTO demographics (row_id, id, version, status, recorded_at, patient_id,"
    " display_name, sex, birth_date, jurisdiction)"
    " VALUES ('d-1', 'p-v1', 1, 'active', :now, 'p-v1', 'Test Patient V1', 'female',"
    " '1958-04-02', 'GB')",
    "INSERT INTO causes (row_id, id, version, status, recorded_at, patient_id, code)"
    " VALUES ('c-1', 'cause-1', 1, 'active', :now, 'p-v1', 'pernicious_anaemia')",
    "INSERT INTO symptoms (row_id, id, version, status, recorded_at, patient_id, date, code,"
    " symptom_status) VALUES ('s-1', 'sym-1', 1, 'active', :now, 'p-v1', '2026-05-02',"
    " 'paraesthesia', 'present')",
    "INSERT INTO symptoms (row_id, id, version, status, recorded_at, patient_id, date, code,"
    " symptom_status) VALUES ('s-2', 'sym-2', 1, 'active', :now, 'p-v1', '2026-05-20',"
    " 'paraesthesia', 'improving')",
    "INSERT INTO observations (row_id, id, version, status, recorded_at, patient_id, date,"
    " code, value, unit) VALUES ('o-1', 'obs-1', 1, 'active', :now, 'p-v1', '2026-05-01',"
    " 'b12_total', 98, 'pmol/L')",
    "INSERT INTO administrations (row_id, id, version, status, recorded_at, patient_id, date,"
    " product, dose, unit, route, given_by) VALUES ('a-1', 'adm-1', 1, 'active', :now, 'p-v1',"
    " '2026-05-04', 'hydroxocobalamin', 1, 'mg', 'IM', 'clinic')",
]


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def v1_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0001 holding one patient's v1 records."""
    databases = (
        sqlite_database(tmp_path, "0001")
        if request.param == "sqlite"
        else postgres_database("0001")
    )
    with databases as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            for statement in V1_ROWS:
                connection.execute(text(statement), {"now": NOW, "yes": True})
        engine.dispose()
        yield url


def test_a_v1_database_with_patients_upgrades_and_keeps_every_record(v1_url: str) -> None:
    assert current_revision(v1_url) == "0001"
    assert upgrade(v1_url) == head_revision()
    services = make_services(v1_url)
    try:
        system = Principal.system("migration-test")
        case = services.records.case_document(system, "p-v1", as_of=dt.date(2026, 5, 25))
        assert [(s["status"], s["reporter"]) for s in case["symptoms"]] == [
            ("present", "clinician"),
            ("improving", "clinician"),
        ]
        assert case["causes"] == ["pernicious_anaemia"]
        assert case["decisions"] == [] and "prior_treatment" not in case
        clinician = Principal("u-1", "dr.north", "clinician", clinic_id="north")
        services.records.add_record(
            clinician,
            "p-v1",
            DecisionIn(code="neuro_loading_complete", date=dt.date(2026, 5, 30), reason="Settled."),
        )
        services.records.add_record(
            clinician,
            "p-v1",
            SymptomIn(code="numbness", date=dt.date(2026, 5, 30), status="present"),
        )
        assessment = services.records.assess_patient(clinician, "p-v1", as_of=dt.date(2026, 6, 1))
        assert assessment.to_dict()["contract_version"] == "1.1"
        assert assessment.regimen is not None and assessment.regimen.loading.complete
    finally:
        services.db.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE symptoms SET reporter = 'patient' WHERE id = 'sym-1'",
        "UPDATE demographics SET deceased_date = '2026-05-01' WHERE id = 'p-v1'",
        "UPDATE decisions SET reason = 'changed my mind' WHERE patient_id = 'p-v1'",
        "DELETE FROM decisions WHERE patient_id = 'p-v1'",
        "DELETE FROM prior_treatments WHERE patient_id = 'p-v1'",
    ],
    ids=["reporter", "deceased", "decision-reason", "delete-decision", "delete-prior"],
)
def test_after_the_upgrade_the_new_columns_and_tables_are_append_only(
    v1_url: str, statement: str
) -> None:
    upgrade(v1_url)
    engine = create_engine(v1_url)
    try:
        with engine.begin() as connection:
            for table, values in (
                ("decisions", "'2026-05-30', 'neuro_loading_complete', 'dr.north', 'Settled.'"),
                ("prior_treatments", "'2024-01-01', :yes"),
            ):
                columns = (
                    "date, code, decided_by, reason"
                    if table == "decisions"
                    else "since_date, loading_completed"
                )
                connection.execute(
                    text(
                        f"INSERT INTO {table} (row_id, id, version, status, recorded_at,"
                        f" patient_id, {columns}) VALUES ('{table}-r', '{table}-1', 1,"
                        f" 'active', :now, 'p-v1', {values})"
                    ),
                    {"now": NOW, "yes": True},
                )
        with pytest.raises(DBAPIError, match="b12plan"), engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
