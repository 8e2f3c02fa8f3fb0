"""The store's mechanism: schema, versioned writes, the audit log, and what the database refuses."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from b12plan.store import (
    ACTIVE,
    ENTERED_IN_ERROR,
    Author,
    Database,
    Repository,
    VersionConflict,
    current_revision,
    head_revision,
    upgrade,
)
from b12plan.store.models import AuditEntry, Base, Clinic, ObservationRow, Patient
from b12plan.store.repository import RecordNotFound, current_rows, versions
from tests.store.support import NOW, uid

B12 = {"date": dt.date(2026, 5, 1), "code": "b12_total", "value": 98.0, "unit": "pmol/L"}


@pytest.fixture
def db(db_url: str) -> Any:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def patient_id(db: Database) -> str:
    clinic, pid = uid("clinic"), uid("patient")
    with db.writing() as session:
        session.add(Clinic(id=clinic, name="c", created_at=NOW))
        session.flush()
        session.add(Patient(id=pid, clinic_id=clinic, created_at=NOW))
    return pid


def repo(session: Session) -> Repository:
    return Repository(session, author=Author("tests"), now=NOW, new_id=lambda: uid("row")[-32:])


def audit_count(db: Database, patient_id: str) -> int:
    with db.reading() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.patient_id == patient_id)
            )
            or 0
        )


def row_count(db: Database, patient_id: str) -> int:
    with db.reading() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(ObservationRow)
                .where(ObservationRow.patient_id == patient_id)
            )
            or 0
        )


def test_migrations_reach_head_and_match_the_models(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
    upgrade(db.engine)  # idempotent
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_full_sync(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with db.engine.connect() as connection:
        pragma: Callable[[str], Any] = lambda name: connection.exec_driver_sql(  # noqa: E731
            f"PRAGMA {name}"
        ).scalar()
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 2  # FULL
    db.dispose()


def test_a_new_record_is_version_1_with_its_audit_entry(db: Database, patient_id: str) -> None:
    with db.writing() as session:
        row = repo(session).create(ObservationRow, patient_id, B12)
    with db.reading() as session:
        (stored,) = current_rows(session, ObservationRow, [patient_id])
        entry = session.scalars(select(AuditEntry).where(AuditEntry.patient_id == patient_id)).one()
    assert (stored.id, stored.version, stored.status) == (row.id, 1, ACTIVE)
    assert stored.recorded_at == NOW
    assert (entry.action, entry.entity_type, entry.entity_id) == ("create", "observations", row.id)
    assert (entry.before_row_id, entry.after_row_id) == (None, row.row_id)


def test_a_correction_is_a_new_version_and_the_old_one_is_kept(
    db: Database, patient_id: str
) -> None:
    with db.writing() as session:
        first = repo(session).create(ObservationRow, patient_id, B12)
    with db.writing() as session:
        second = repo(session).correct(
            ObservationRow, patient_id, first.id, 1, {**B12, "value": 89.0}
        )
    with db.reading() as session:
        old, new = versions(session, ObservationRow, patient_id, first.id)
        last = session.scalars(
            select(AuditEntry).where(AuditEntry.patient_id == patient_id).order_by(AuditEntry.id)
        ).all()[-1]
    assert (old.status, old.superseded_by, old.value) == (ENTERED_IN_ERROR, second.row_id, 98.0)
    assert (new.status, new.version, new.value) == (ACTIVE, 2, 89.0)
    assert (last.action, last.before_row_id, last.after_row_id) == (
        "correct",
        old.row_id,
        new.row_id,
    )


def test_a_stale_version_conflicts_and_writes_nothing(db: Database, patient_id: str) -> None:
    with db.writing() as session:
        first = repo(session).create(ObservationRow, patient_id, B12)
    with db.writing() as session:
        repo(session).correct(ObservationRow, patient_id, first.id, 1, {**B12, "value": 90.0})
    rows, audits = row_count(db, patient_id), audit_count(db, patient_id)
    with pytest.raises(VersionConflict) as caught, db.writing() as session:
        repo(session).correct(ObservationRow, patient_id, first.id, 1, {**B12, "value": 91.0})
    assert caught.value.current_version == 2
    assert (row_count(db, patient_id), audit_count(db, patient_id)) == (rows, audits)


def test_a_retraction_marks_the_record_and_cannot_be_repeated(
    db: Database, patient_id: str
) -> None:
    with db.writing() as session:
        first = repo(session).create(ObservationRow, patient_id, B12)
    with db.writing() as session:
        retracted = repo(session).retract(ObservationRow, patient_id, first.id, 1, reason="typo")
    assert (retracted.status, retracted.superseded_by) == (ENTERED_IN_ERROR, None)
    with db.reading() as session:
        assert current_rows(session, ObservationRow, [patient_id]) == []
    with pytest.raises(VersionConflict), db.writing() as session:
        repo(session).retract(ObservationRow, patient_id, first.id, 1)
    with pytest.raises(RecordNotFound), db.writing() as session:
        repo(session).retract(ObservationRow, patient_id, "no-such-record", 1)


def test_two_writers_of_the_same_version_cannot_both_win(db: Database, patient_id: str) -> None:
    """The compare-and-set holds under real concurrency, not just in sequence."""
    with db.writing() as session:
        first = repo(session).create(ObservationRow, patient_id, B12)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def edit(value: float) -> None:
        barrier.wait()
        try:
            with db.writing() as session:
                repo(session).correct(
                    ObservationRow, patient_id, first.id, 1, {**B12, "value": value}
                )
            outcomes.append("ok")
        except VersionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=edit, args=(v,)) for v in (70.0, 80.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    with db.reading() as session:
        assert [r.version for r in versions(session, ObservationRow, patient_id, first.id)] == [
            1,
            2,
        ]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM observations WHERE patient_id = :pid",
        "DELETE FROM audit_log WHERE patient_id = :pid",
        "UPDATE audit_log SET actor = 'someone else' WHERE patient_id = :pid",
        "UPDATE observations SET value = 500 WHERE patient_id = :pid",
        "UPDATE observations SET status = 'entered-in-error', value = 500 WHERE patient_id = :pid",
        "DELETE FROM patients WHERE id = :pid",
    ],
    ids=[
        "delete-record",
        "delete-audit",
        "edit-audit",
        "edit-value-in-place",
        "edit-while-retracting",
        "delete-patient",
    ],
)
def test_the_database_refuses_to_lose_history(
    db: Database, patient_id: str, statement: str
) -> None:
    """Even SQL that bypasses the repository cannot delete or rewrite what was recorded."""
    with db.writing() as session:
        repo(session).create(ObservationRow, patient_id, B12)
    with pytest.raises(DBAPIError, match="b12plan"), db.writing() as session:
        session.execute(text(statement), {"pid": patient_id})


def test_an_entered_in_error_version_cannot_be_revived(db: Database, patient_id: str) -> None:
    with db.writing() as session:
        first = repo(session).create(ObservationRow, patient_id, B12)
    with db.writing() as session:
        repo(session).retract(ObservationRow, patient_id, first.id, 1)
    with pytest.raises(DBAPIError, match="b12plan"), db.writing() as session:
        session.execute(
            text("UPDATE observations SET status = 'active' WHERE id = :id"), {"id": first.id}
        )


def test_at_most_one_active_version_per_record(db: Database, patient_id: str) -> None:
    with db.writing() as session:
        first = repo(session).create(ObservationRow, patient_id, B12)
    with pytest.raises(IntegrityError), db.writing() as session:
        repo(session).create(ObservationRow, patient_id, B12, entity_id=first.id)


def test_records_must_belong_to_a_known_patient(db: Database) -> None:
    with pytest.raises(IntegrityError), db.writing() as session:
        repo(session).create(ObservationRow, uid("nobody"), B12)


def test_timestamps_come_back_in_utc(db: Database, patient_id: str) -> None:
    local = NOW.astimezone(dt.timezone(dt.timedelta(hours=5)))
    with db.writing() as session:
        row = Repository(
            session, author=Author("tests"), now=local, new_id=lambda: uid("r")
        ).create(ObservationRow, patient_id, B12)
    with db.reading() as session:
        stored = session.get(ObservationRow, row.row_id)
    assert stored is not None
    assert stored.recorded_at == NOW
    assert stored.recorded_at.utcoffset() == dt.timedelta(0)
