"""Revision 0004_reminders upgrades a v1 database that holds data, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from b12plan.store import make_engine, upgrade
from tests.store.support import postgres_database

NOW = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)


@contextmanager
def v1_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'v1.db'}"
        upgrade(url, "0001")
        yield url
    else:
        with postgres_database() as migrated:  # at head: rebuild it at 0001
            engine = make_engine(migrated)
            with engine.begin() as c:
                c.execute(sa.text("DROP SCHEMA public CASCADE"))
                c.execute(sa.text("CREATE SCHEMA public"))
            engine.dispose()
            upgrade(migrated, "0001")
            yield migrated


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_v1_clinic_with_patients_and_users_upgrades_and_admits_carers(
    kind: str, tmp_path: Path
) -> None:
    with v1_database(kind, tmp_path) as url:
        engine = make_engine(url)
        with engine.begin() as c:
            c.execute(
                sa.text("INSERT INTO clinics (id, name, created_at) VALUES ('elm', 'Elm', :t)"),
                {"t": NOW},
            )
            c.execute(
                sa.text(
                    "INSERT INTO patients (id, clinic_id, created_at) VALUES ('p1', 'elm', :t)"
                ),
                {"t": NOW},
            )
            c.execute(
                sa.text(
                    "INSERT INTO users (id, username, display_name, password_hash, role,"
                    " clinic_id, patient_id, active, created_at) VALUES"
                    " ('u1', 'pat', 'Pat', 'x', 'patient', NULL, 'p1', :a, :t)"
                ),
                {"t": NOW, "a": True},
            )
            c.execute(
                sa.text(
                    "INSERT INTO auth_tokens (token_hash, user_id, kind, created_at, expires_at)"
                    " VALUES ('h', 'u1', 'cookie', :t, :t)"
                ),
                {"t": NOW},
            )
        engine.dispose()

        assert upgrade(url) == "0004_reminders"

        engine = make_engine(url)
        try:
            with engine.begin() as c:
                assert c.execute(sa.text("SELECT role FROM users WHERE id = 'u1'")).scalar() == (
                    "patient"
                )
                assert c.execute(sa.text("SELECT reminder_email FROM clinics")).scalar() is None
                c.execute(
                    sa.text(
                        "INSERT INTO users (id, username, display_name, password_hash, role,"
                        " active, created_at) VALUES ('u2', 'carer', 'C', 'x', 'carer', :a, :t)"
                    ),
                    {"t": NOW, "a": True},
                )
            with pytest.raises(IntegrityError), engine.begin() as c:
                c.execute(
                    sa.text(
                        "INSERT INTO users (id, username, display_name, password_hash, role,"
                        " active, created_at) VALUES ('u3', 'x', 'X', 'x', 'janitor', :a, :t)"
                    ),
                    {"t": NOW, "a": True},
                )
            with pytest.raises(DBAPIError, match=r"never deleted|not allowed"), engine.begin() as c:
                c.execute(sa.text("DELETE FROM users WHERE id = 'u2'"))
            # foreign keys still point at users
            with pytest.raises(IntegrityError), engine.begin() as c:
                c.execute(
                    sa.text(
                        "INSERT INTO auth_tokens (token_hash, user_id, kind, created_at,"
                        " expires_at) VALUES ('h2', 'nobody', 'cookie', :t, :t)"
                    ),
                    {"t": NOW},
                )
        finally:
            engine.dispose()
