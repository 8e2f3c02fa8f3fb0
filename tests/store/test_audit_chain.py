"""The hash-chained audit log: intact after real work, and every kind of tampering is found.

Each test gets its own database (tampering is destructive), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from b12plan.app import Services
from b12plan.service import Principal
from b12plan.service.schemas import NewClinic, NewPatient, NewUser
from b12plan.store import head_revision, upgrade
from b12plan.store.chain import verify
from tests.store.support import make_services, postgres_database, sqlite_database

OPERATOR = Principal.system("test")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """A new migrated database with a clinic, a clinician, two patients (a few audit entries)."""
    context = sqlite_database(tmp_path) if request.param == "sqlite" else postgres_database()
    with context as url:
        services = make_services(url)
        services.auth.add_clinic(OPERATOR, NewClinic(id="north", name="North clinic"))
        services.auth.add_user(
            OPERATOR,
            NewUser(
                username="dr.north",
                password="correct horse battery",
                role="clinician",
                clinic_id="north",
            ),
        )
        for name in ("Ann Example", "Bo Example"):
            services.records.create_patient(
                OPERATOR, NewPatient(display_name=name, clinic_id="north")
            )
        yield services
        services.db.dispose()


def check(services: Services) -> tuple[bool, str | None, int]:
    with services.db.engine.connect() as connection:
        verdict = verify(connection)
    return verdict.intact, verdict.problem, verdict.checked


def execute(services: Services, *statements: str) -> None:
    with services.db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def drop_trigger(services: Services, name: str, table: str) -> str:
    on = "" if services.db.is_sqlite else f" ON {table}"
    return f"DROP TRIGGER {name}{on}"


def test_the_chain_is_intact_after_real_work(fresh: Services) -> None:
    intact, problem, checked = check(fresh)
    assert intact, problem
    assert checked >= 4


def test_an_edited_entry_is_found(fresh: Services) -> None:
    execute(
        fresh,
        drop_trigger(fresh, "audit_log_never_changed", "audit_log"),
        "UPDATE audit_log SET actor = 'someone else' WHERE id = 2",
    )
    intact, problem, checked = check(fresh)
    assert not intact and checked == 1
    assert problem == "entry 2 was changed after it was written"


def test_a_deleted_entry_is_found(fresh: Services) -> None:
    execute(
        fresh,
        drop_trigger(fresh, "audit_log_never_deleted", "audit_log"),
        "DELETE FROM audit_log WHERE id = 2",
    )
    intact, problem, _ = check(fresh)
    assert not intact and problem is not None
    assert problem.startswith("entry 3 does not follow entry 1")


def test_entries_cut_off_the_end_are_found(fresh: Services) -> None:
    execute(
        fresh,
        drop_trigger(fresh, "audit_log_never_deleted", "audit_log"),
        "DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)",
    )
    intact, problem, _ = check(fresh)
    assert not intact and problem is not None and "removed from the end" in problem


def test_a_dropped_trigger_alone_is_found(fresh: Services) -> None:
    execute(fresh, drop_trigger(fresh, "users_change_audited", "users"))
    intact, problem, _ = check(fresh)
    assert not intact and problem is not None and "users_change_audited" in problem


def test_a_role_change_without_its_audit_entry_is_refused(fresh: Services) -> None:
    with pytest.raises(DBAPIError, match="audit entry"):
        execute(fresh, "UPDATE users SET role = 'admin' WHERE username = 'dr.north'")


def test_disabling_and_new_passwords_are_audited_in_the_chain(fresh: Services) -> None:
    fresh.auth.set_active(OPERATOR, "dr.north", False)
    fresh.auth.set_password(OPERATOR, "dr.north", "another long phrase")
    with fresh.db.engine.connect() as connection:
        actions = (
            connection.execute(
                text("SELECT action FROM audit_log WHERE entity_type = 'user' ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert actions[-2:] == ["disable", "password"]
    assert check(fresh)[0]


def test_concurrent_writers_keep_one_linear_chain(fresh: Services) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for k in range(5):
                fresh.auth.add_clinic(OPERATOR, NewClinic(id=f"c{n}-{k}", name=f"Clinic {n}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    intact, problem, checked = check(fresh)
    assert intact, problem
    with fresh.db.engine.connect() as connection:
        ids = connection.execute(text("SELECT id FROM audit_log ORDER BY id")).scalars().all()
    assert ids == list(range(1, len(ids) + 1)) and checked == len(ids)


@contextmanager
def v1_database(backend: str, directory: Path) -> Iterator[str]:
    """An empty database (no schema yet) on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'v1.db'}"
        return
    with postgres_database() as url:  # created at head: empty it again
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        yield url


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_version_1_database_with_history_is_chained_by_the_upgrade(
    backend: str, tmp_path: Path
) -> None:
    with v1_database(backend, tmp_path) as url:
        assert upgrade(url, "0001") == "0001"
        at = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO clinics (id, name, created_at) VALUES ('old', 'Old', :at)"),
                {"at": at},
            )
            for n in range(3):
                connection.execute(
                    text(
                        "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, detail)"
                        " VALUES (:at, 'cli', 'create', 'clinic', 'old', :d)"
                    ),
                    {"at": at + dt.timedelta(minutes=n), "d": f"step {n}"},
                )
        engine.dispose()
        assert upgrade(url) == head_revision()
        services = make_services(url)
        services.auth.add_clinic(OPERATOR, NewClinic(id="new", name="New clinic"))
        intact, problem, checked = check(services)
        services.db.dispose()
    assert intact, problem
    assert checked == 4
