"""Synthetic demo data: the shipped example cases as stored patients, plus demo users.

Each example case (``b12plan.examples``) is moved in time so that its own ``as_of`` falls on
today: the story (loading in progress, an overdue dose, a stopped lifelong course...) is then
what the worklist shows today. Seeding is idempotent: what exists already is left alone.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from b12plan.examples import example_cases
from b12plan.service.auth import AuthService
from b12plan.service.carers import CarerService
from b12plan.service.errors import Conflict
from b12plan.service.records import RecordsService
from b12plan.service.schemas import NewClinic, NewUser, Principal

DEMO_CLINIC = NewClinic(id="demo-clinic", name="Demo clinic")
OTHER_CLINIC = NewClinic(id="riverside", name="Riverside clinic (a second demo clinic)")
OTHER_CLINIC_EXAMPLES = ("05-",)  # stories filed at the second clinic, to show clinic isolation
PATIENT_USER_EXAMPLE = "01-"  # the demo patient user's own record


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    role: str
    clinic_id: str | None = None
    patient_example: str | None = None


DEMO_USERS = (
    DemoUser("dr.demo", "demo-clinician", "clinician", clinic_id=DEMO_CLINIC.id),
    DemoUser("pat.demo", "demo-patient", "patient", patient_example=PATIENT_USER_EXAMPLE),
    DemoUser("admin.demo", "demo-administrator", "admin"),
    DemoUser("dr.riverside", "demo-riverside", "clinician", clinic_id=OTHER_CLINIC.id),
    DemoUser("carer.demo", "demo-carer-2026", "carer", patient_example=PATIENT_USER_EXAMPLE),
)


@dataclass(frozen=True)
class DemoPatient:
    id: str
    clinic_id: str
    title: str
    created: bool


@dataclass(frozen=True)
class SeededUser:
    user: DemoUser
    created: bool
    patient_id: str | None = None


@dataclass(frozen=True)
class DemoSeed:
    patients: list[DemoPatient]
    users: list[SeededUser]


_DATE_KEYS = ("as_of", "birth_date", "date", "start", "end")


def shift_dates(document: Any, days: int) -> Any:
    """A copy of a case document with every date moved by ``days``."""
    if isinstance(document, dict):
        return {
            k: (
                (dt.date.fromisoformat(v) + dt.timedelta(days=days)).isoformat()
                if k in _DATE_KEYS and isinstance(v, str)
                else shift_dates(v, days)
            )
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [shift_dates(v, days) for v in document]
    return document


def seed_demo(
    records: RecordsService,
    auth: AuthService,
    *,
    today: dt.date,
    carers: CarerService | None = None,
) -> DemoSeed:
    """Create the demo clinics, patients (as of ``today``) and users that do not exist yet.

    The demo carer (linked to the demo patient, consent noted as a demo) is made only when
    ``carers`` is given.
    """
    system = Principal.system("seed-demo")
    existing_clinics = {c.id for c in auth.list_clinics(system)}
    for clinic in (DEMO_CLINIC, OTHER_CLINIC):
        if clinic.id not in existing_clinics:
            auth.add_clinic(system, clinic)
    patients: list[DemoPatient] = []
    patient_of_example: dict[str, str] = {}
    for example in example_cases():
        document = json.loads(example.text)
        days = (today - dt.date.fromisoformat(document["as_of"])).days
        document = shift_dates(document, days)
        pid = str(document.get("patient", {}).get("id") or example.name.removesuffix(".json"))
        clinic_id = (
            OTHER_CLINIC.id if example.name.startswith(OTHER_CLINIC_EXAMPLES) else DEMO_CLINIC.id
        )
        patient_of_example[example.name[:3]] = pid
        created = True
        try:
            records.import_case(
                system,
                document,
                clinic_id=clinic_id,
                display_name=f"Demo {example.name[:2]}: {example.title}"[:200],
                patient_id=pid,
            )
        except Conflict:
            created = False
        patients.append(DemoPatient(pid, clinic_id, example.title, created))
    known = {u.username for u in auth.list_users(system)}
    users: list[SeededUser] = []
    for user in DEMO_USERS:
        patient_id = patient_of_example.get(user.patient_example) if user.patient_example else None
        if user.role == "carer" and carers is None:
            continue
        if user.username in known:
            users.append(SeededUser(user, False, patient_id))
            continue
        auth.add_user(
            system,
            NewUser(
                username=user.username,
                password=user.password,
                role=user.role,
                display_name=f"Demo {user.role}",
                clinic_id=user.clinic_id,
                patient_id=patient_id if user.role == "patient" else None,
            ),
        )
        if user.role == "carer" and carers is not None and patient_id is not None:
            carers.link_by_clinic(
                system, user.username, patient_id, consent_note="demo data: not a real consent"
            )
        users.append(SeededUser(user, True, patient_id))
    return DemoSeed(patients=patients, users=users)


__all__ = ["DEMO_USERS", "DemoSeed", "DemoUser", "SeededUser", "seed_demo", "shift_dates"]
