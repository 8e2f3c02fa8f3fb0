"""The CDS Hooks ledger on SQLite and PostgreSQL: JWT ids seen, cards issued, feedback audited;
and the migration that adds its tables to a v1 database that already holds records."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from b12plan.app import Services
from b12plan.service import FixedClock
from b12plan.service.cds import CdsLedger, FeedbackItem, IssuedCard
from b12plan.store import Database, current_revision, head_revision, models, upgrade
from tests.store.support import DEFAULT_POSTGRES_URL, NOW, POSTGRES_ENV, uid


def ledger(services: Services, now: dt.datetime = NOW) -> CdsLedger:
    return CdsLedger(services.db, clock=FixedClock(now))


def test_a_jwt_id_is_accepted_once_per_issuer(services: Services) -> None:
    cds, jti = ledger(services), uid("jti")
    until = NOW + dt.timedelta(minutes=5)
    assert cds.first_use("https://a.example", jti, until)
    assert not cds.first_use("https://a.example", jti, until)
    assert cds.first_use("https://b.example", jti, until)  # another issuer's namespace


def test_racing_workers_accept_a_jwt_id_exactly_once(services: Services) -> None:
    """Eight threads, each with its own ledger (as separate workers would be), one jti."""
    jti, until = uid("race"), NOW + dt.timedelta(minutes=5)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        cds = ledger(services)
        barrier.wait()
        results.append(cds.first_use("https://race.example", jti, until))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_expired_jwt_ids_are_purged_and_live_ones_kept(services: Services) -> None:
    old, live = uid("old"), uid("live")
    ledger(services).first_use("https://p.example", old, NOW + dt.timedelta(minutes=1))
    ledger(services).first_use("https://p.example", live, NOW + dt.timedelta(hours=3))
    later = ledger(services, NOW + dt.timedelta(hours=1))
    assert later.first_use("https://p.example", uid("new"), NOW + dt.timedelta(hours=2))
    with services.db.reading() as session:
        expired = session.scalar(
            select(func.count())
            .select_from(models.CdsTokenSeen)
            .where(models.CdsTokenSeen.expires_at < NOW + dt.timedelta(hours=1))
        )
    assert expired == 0
    assert not later.first_use("https://p.example", live, NOW + dt.timedelta(hours=3))


def test_feedback_is_audited_all_or_nothing(services: Services) -> None:
    cds, card = ledger(services), str(uuid.uuid4())
    cds.record_cards(
        service_id="b12plan-order-sign",
        hook_instance=str(uuid.uuid4()),
        patient_ref="p-1",
        caller="iss:https://e.example",
        cards=[IssuedCard(card, "critical", "ALLERGIC_REACTION", ("s-1",))],
    )
    bad = cds.record_feedback(
        service_id="b12plan-order-sign",
        caller="iss:https://e.example",
        author_name="cds-client:e",
        author_user_id=None,
        items=[
            FeedbackItem(0, card, "overridden", detail={"userComment": "ok"}),
            FeedbackItem(1, card, "accepted", ("s-2",)),
        ],
    )
    assert [(p.index, p.loc) for p in bad] == [(1, "acceptedSuggestions[0].id")]
    good = cds.record_feedback(
        service_id="b12plan-order-sign",
        caller="iss:https://e.example",
        author_name="cds-client:e",
        author_user_id=None,
        items=[FeedbackItem(0, card, "accepted", ("s-1",))],
    )
    assert good == []
    with services.db.reading() as session:
        entries = list(
            session.scalars(select(models.AuditEntry).where(models.AuditEntry.entity_id == card))
        )
    assert [e.action for e in entries] == ["cds-accepted"]
    assert json.loads(entries[0].detail or "{}")["finding"] == "ALLERGIC_REACTION"


# --- the migration -----------------------------------------------------------------------------


@contextmanager
def empty_postgres() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES_URL)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable at {base}: {exc.orig}")
        pytest.skip(f"PostgreSQL unreachable at {base}")
    name = f"b12plan_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'v1.db'}"
    else:
        with empty_postgres() as url:
            yield url


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_migration_upgrades_a_v1_database_with_data(backend: str, tmp_path: Path) -> None:
    with empty_database(backend, tmp_path) as url:
        assert upgrade(url, "0001") == "0001"
        db = Database(url)
        try:
            with db.writing() as session:
                session.add(models.Clinic(id="c-1", name="Clinic", created_at=NOW))
                session.flush()
                session.add(models.Patient(id="p-1", clinic_id="c-1", created_at=NOW))
                session.flush()
                session.add(
                    models.AuditEntry(
                        at=NOW,
                        actor="tests",
                        action="create",
                        entity_type="patient",
                        entity_id="p-1",
                        patient_id="p-1",
                    )
                )
            upgrade(url)
            assert current_revision(db.engine) == head_revision()
            tables = set(inspect(db.engine).get_table_names())
            assert {"cds_tokens_seen", "cds_cards_issued"} <= tables
            with db.reading() as session:
                assert session.get(models.Patient, "p-1") is not None
                assert session.scalar(select(func.count()).select_from(models.AuditEntry)) == 1
            cds = CdsLedger(db, clock=FixedClock(NOW))
            assert cds.first_use("https://e.example", "j-1", NOW + dt.timedelta(minutes=5))
        finally:
            db.dispose()
