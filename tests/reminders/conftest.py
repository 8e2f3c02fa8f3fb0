"""Reminder tests run on SQLite and PostgreSQL, and deliver to a real SMTP server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from b12plan.app import Services, Settings, build_services
from b12plan.reminders.mail import SmtpSettings
from b12plan.reminders.settings import ReminderSettings
from b12plan.service import Principal
from b12plan.service.schemas import NewClinic, NewPatient
from tests.reminders.smtp import Mailbox, smtp_server
from tests.store.support import FAST_HASH, postgres_database, sqlite_database, uid


@dataclass
class MovableClock:
    """A clock the test moves (the simulated days of a reminder schedule)."""

    instant: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC))

    def now(self) -> dt.datetime:
        return self.instant

    def today(self) -> dt.date:
        return self.instant.date()

    def set(self, day: dt.date, hour: int = 9, minute: int = 0) -> None:
        self.instant = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        directory: Path = tmp_path_factory.mktemp("sqlite-reminders")
        with sqlite_database(directory) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@dataclass
class Clinic:
    services: Services
    clock: MovableClock
    mailbox: Mailbox
    clinic_id: str


@pytest.fixture
def clinic(db_url: str, mailbox: tuple[Mailbox, int]) -> Iterator[Clinic]:
    box, port = mailbox
    clock = MovableClock()
    settings = Settings(
        database_url=db_url,
        reminders=ReminderSettings(
            smtp=SmtpSettings(host="127.0.0.1", port=port, sender="Clinic <r@clinic.test>"),
            lease_seconds=60,
            backoff_seconds=60,
            max_attempts=3,
        ),
    )
    services = build_services(settings, clock=clock, password_hash=FAST_HASH)
    clinic_id = uid("clinic")
    services.auth.add_clinic(Principal.system("tests"), NewClinic(id=clinic_id, name="Elm Surgery"))
    try:
        yield Clinic(services, clock, box, clinic_id)
    finally:
        services.db.dispose()


def new_patient(clinic: Clinic, name: str = "Ada Lovelace") -> str:
    return clinic.services.records.create_patient(
        Principal.system("tests"),
        NewPatient(
            display_name=name,
            sex="female",
            birth_date=dt.date(1958, 4, 2),
            clinic_id=clinic.clinic_id,
        ),
    ).id
