"""Every store test runs on SQLite and on PostgreSQL (see ``support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from b12plan.app import Services
from tests.store.support import (
    Staff,
    World,
    build_staff,
    build_world,
    make_services,
    postgres_database,
    sqlite_database,
)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        directory: Path = tmp_path_factory.mktemp("sqlite-store")
        with sqlite_database(directory) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(scope="session")
def services(db_url: str) -> Iterator[Services]:
    built = make_services(db_url)
    yield built
    built.db.dispose()


@pytest.fixture(scope="session")
def staff(services: Services) -> Staff:
    return build_staff(services)


@pytest.fixture
def world(staff: Staff) -> World:
    return build_world(staff)
