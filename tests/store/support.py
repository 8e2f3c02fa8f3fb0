"""Databases for the store and API tests: SQLite always, PostgreSQL when reachable.

Each test session gets one migrated database per backend (a PostgreSQL database created and
dropped by the session); tests keep out of each other's way by using their own ids (``uid``),
never by assuming an empty store.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from b12plan.app import Services, Settings, build_services
from b12plan.service import FixedClock, Principal
from b12plan.service.schemas import NewClinic, NewPatient, NewUser
from b12plan.store import upgrade

POSTGRES_ENV = "B12PLAN_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.UTC)
TODAY = NOW.date()

# Real Argon2id, with cheap parameters: tests sign in often and the cost is not what they test.
FAST_HASH = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),))


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextmanager
def sqlite_database(directory: Path, revision: str = "head") -> Iterator[str]:
    url = f"sqlite:///{directory / 'store.db'}"
    upgrade(url, revision)
    yield url


@contextmanager
def postgres_database(revision: str = "head") -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards; skipped loudly if unreachable."""
    base = os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES_URL)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        reason = (
            f"PostgreSQL unreachable at {base} ({exc.orig}): the store and API tests ran on"
            " SQLite only"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI requires PostgreSQL ({POSTGRES_ENV})")
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    name = f"b12plan_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, revision)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_services(url: str, now: dt.datetime = NOW) -> Services:
    return build_services(
        Settings(database_url=url), clock=FixedClock(now), password_hash=FAST_HASH
    )


@dataclass(frozen=True)
class World:
    """Two clinics, their clinicians, an admin, and patients (one with a patient user)."""

    services: Services
    clinic: str
    other_clinic: str
    admin: Principal
    clinician: Principal
    colleague: Principal  # a second clinician of the same clinic
    outsider: Principal  # a clinician of the other clinic
    patient: Principal  # the patient user of ``patient_id``
    patient_id: str
    neighbour_id: str  # another patient of the same clinic
    far_patient_id: str  # a patient of the other clinic
    password: str = "correct horse battery"


@dataclass(frozen=True)
class Staff:
    """The long-lived part of a test world: clinics, their users, a patient elsewhere."""

    services: Services
    clinic: str
    other_clinic: str
    admin: Principal
    clinician: Principal
    colleague: Principal
    outsider: Principal
    far_patient_id: str


def _patient(services: Services, clinic: str, name: str) -> str:
    new = NewPatient(
        display_name=name, sex="female", birth_date=dt.date(1960, 1, 2), clinic_id=clinic
    )
    return services.records.create_patient(Principal.system("tests"), new).id


def _user(services: Services, role: str, **kw: str) -> Principal:
    out = services.auth.add_user(
        Principal.system("tests"),
        NewUser(username=uid(role)[:30], password=World.password, role=role, **kw),
    )
    return Principal(
        user_id=out.id,
        username=out.username,
        role=out.role,
        clinic_id=out.clinic_id,
        patient_id=out.patient_id,
    )


def build_staff(services: Services) -> Staff:
    system = Principal.system("tests")
    clinic, other = uid("clinic"), uid("clinic")
    for c in (clinic, other):
        services.auth.add_clinic(system, NewClinic(id=c, name=f"Clinic {c}"))
    return Staff(
        services=services,
        clinic=clinic,
        other_clinic=other,
        admin=_user(services, "admin"),
        clinician=_user(services, "clinician", clinic_id=clinic),
        colleague=_user(services, "clinician", clinic_id=clinic),
        outsider=_user(services, "clinician", clinic_id=other),
        far_patient_id=_patient(services, other, "Test Patient C"),
    )


def build_world(staff: Staff) -> World:
    """Fresh patients (and a patient user) in the staff's clinic, for one test."""
    services = staff.services
    patient_id = _patient(services, staff.clinic, "Test Patient A")
    return World(
        services=services,
        clinic=staff.clinic,
        other_clinic=staff.other_clinic,
        admin=staff.admin,
        clinician=staff.clinician,
        colleague=staff.colleague,
        outsider=staff.outsider,
        patient=_user(services, "patient", patient_id=patient_id),
        patient_id=patient_id,
        neighbour_id=_patient(services, staff.clinic, "Test Patient B"),
        far_patient_id=staff.far_patient_id,
    )
