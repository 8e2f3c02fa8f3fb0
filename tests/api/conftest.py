"""An app per test over a copy of one seeded SQLite store (demo patients and users).

The demo data is seeded once per session with a fixed clock; each test gets its own copy of the
database file, so tests may write freely. PostgreSQL is covered by ``tests/store`` and by the
API tests that use ``pg_client``.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from b12plan.app import Services, create_app
from b12plan.service.demo import seed_demo
from tests.store.support import TODAY, make_services, postgres_database, sqlite_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx; not about this code
    from fastapi.testclient import TestClient


SITE = "https://testserver"


@dataclass
class Api:
    """A test client with the services behind it."""

    client: TestClient
    services: Services
    app: FastAPI

    def login(self, username: str, password: str) -> dict[str, str]:
        response = self.client.post(
            "/api/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def clinician(self) -> dict[str, str]:
        return self.login("dr.demo", "demo-clinician")

    def patient(self) -> dict[str, str]:
        return self.login("pat.demo", "demo-patient")

    def admin(self) -> dict[str, str]:
        return self.login("admin.demo", "demo-administrator")

    def riverside(self) -> dict[str, str]:
        return self.login("dr.riverside", "demo-riverside")

    def browser(self, origin: str | None = SITE) -> TestClient:
        """A client like a browser on this site: HTTPS (the ``__Host-`` cookie is Secure) and,
        unless ``origin`` is None, the ``Origin`` header a browser sends with a post."""
        return TestClient(
            self.app, base_url=SITE, headers={"Origin": origin} if origin is not None else {}
        )


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("seeded")
    with sqlite_database(directory) as url:
        services = make_services(url)
        seed_demo(services.records, services.auth, today=TODAY)
        services.db.dispose()
    return directory / "store.db"


def api_over(url: str) -> Iterator[Api]:
    services = make_services(url)
    app = create_app(services=services)
    with TestClient(app) as client:
        yield Api(client, services, app)
    services.db.dispose()


@pytest.fixture
def api(seeded_file: Path, tmp_path: Path) -> Iterator[Api]:
    copy = tmp_path / "store.db"
    for suffix in ("", "-wal", "-shm"):  # a WAL file, if one is left, holds committed data
        source = seeded_file.with_name(seeded_file.name + suffix)
        if source.exists():
            shutil.copyfile(source, copy.with_name(copy.name + suffix))
    yield from api_over(f"sqlite:///{copy}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        services = make_services(url)
        seed_demo(services.records, services.auth, today=TODAY)
        services.db.dispose()
        yield url


@pytest.fixture
def pg_api(pg_url: str) -> Iterator[Api]:
    yield from api_over(pg_url)
