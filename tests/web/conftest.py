"""Fixtures for the web UI tests: the real app on a copy of a seeded demo database.

The demo data (``b12plan.service.demo.seed_demo``) is seeded once per session into a SQLite
file with "today" pinned to ``TODAY``; each test gets its own copy of that file, so tests may
write without affecting each other and no test ever reads the wall clock.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from b12plan.app import Services, Settings, build_services, create_app
from b12plan.service import FixedClock
from b12plan.service.demo import seed_demo
from b12plan.store import upgrade

TODAY = dt.date(2026, 3, 2)
CLOCK = FixedClock(dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC))

# Argon2 at its lightest settings: the tests sign in often, and password strength is not what
# they test. Production uses pwdlib's recommended parameters.
FAST_HASH = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))

CLINICIAN = ("dr.demo", "demo-clinician")
PATIENT = ("pat.demo", "demo-patient")
ADMIN = ("admin.demo", "demo-administrator")
PATIENT_ID = "demo-01"  # the demo patient user's own record (neurological, loading)
OVERDUE_ID = "demo-03"  # maintenance every 3 months, next injection overdue
OTHER_CLINIC_ID = "demo-05"  # filed at the second demo clinic


def services_for(path: Path) -> Services:
    return build_services(
        Settings(database_url=f"sqlite:///{path}", throttle_delay_seconds=0),
        clock=CLOCK,
        password_hash=FAST_HASH,
    )


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database holding the demo clinics, patients and users."""
    path = tmp_path_factory.mktemp("web-seed") / "seed.db"
    upgrade(f"sqlite:///{path}")
    services = services_for(path)
    seed_demo(services.records, services.auth, today=TODAY)
    services.db.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


def copy_db(seeded: Path, target_dir: Path) -> Path:
    target = target_dir / "web.db"
    shutil.copyfile(seeded, target)
    for suffix in ("-wal", "-shm"):
        extra = seeded.with_name(seeded.name + suffix)
        if extra.exists():
            shutil.copyfile(extra, target.with_name(target.name + suffix))
    return target


@pytest.fixture(scope="module")
def shared_services(
    seeded_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    """One database for a module's read-only tests (tests that write use ``services``)."""
    built = services_for(copy_db(seeded_db, tmp_path_factory.mktemp("shared")))
    yield built
    built.db.dispose()


@pytest.fixture(scope="module")
def shared_app(shared_services: Services) -> FastAPI:
    return create_app(services=shared_services)


SITE = "https://testserver"


def browser_client(app: FastAPI) -> TestClient:
    """A client that behaves like a browser on this site: HTTPS (the session cookie is
    ``__Host-``, Secure) and an ``Origin`` header on every request, as a browser sends with a
    form post (the CSRF rule refuses cookie-authenticated posts without one)."""
    return TestClient(app, base_url=SITE, headers={"Origin": SITE})


@pytest.fixture
def visitor(shared_app: FastAPI) -> TestClient:
    """Not signed in, on the shared read-only app."""
    return browser_client(shared_app)


@pytest.fixture(scope="module")
def viewing_clinician(shared_app: FastAPI) -> TestClient:
    """Signed in as the demo clinician on the shared app: for tests that only read."""
    return sign_in(browser_client(shared_app), CLINICIAN)


@pytest.fixture(scope="module")
def viewing_patient(shared_app: FastAPI) -> TestClient:
    """Signed in as the demo patient on the shared app: for tests that only read."""
    return sign_in(browser_client(shared_app), PATIENT)


@pytest.fixture
def services(seeded_db: Path, tmp_path: Path) -> Iterator[Services]:
    """A fresh copy of the demo database, for a test that writes."""
    built = services_for(copy_db(seeded_db, tmp_path))
    yield built
    built.db.dispose()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services=services)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return browser_client(app)


def sign_in(client: TestClient, credentials: tuple[str, str]) -> TestClient:
    username, password = credentials
    response = client.post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def clinician(client: TestClient) -> TestClient:
    return sign_in(client, CLINICIAN)


@pytest.fixture
def patient(client: TestClient) -> TestClient:
    return sign_in(client, PATIENT)
