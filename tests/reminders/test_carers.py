"""Carers: linked by the clinic or by the patient's invitation; see the schedule, log doses as
carer, get the reminders, and reach nothing else (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from b12plan.service import Forbidden, InvalidInput, NotFound, Principal
from b12plan.service.schemas import (
    KINDS,
    AdministrationIn,
    NewUser,
    SymptomIn,
    WorklistQuery,
)
from tests.reminders.conftest import Clinic
from tests.reminders.test_delivery import SYSTEM, ada
from tests.store.support import uid

PASSWORD = "carer password 1"


def carer_account(clinic: Clinic) -> str:
    name = uid("carer")[:30]
    clinic.services.auth.add_user(
        SYSTEM, NewUser(username=name, password=PASSWORD, role="carer", display_name="Grace")
    )
    return name


def signed_in(clinic: Clinic, username: str) -> Principal:
    issued = clinic.services.auth.login(username, PASSWORD, kind="bearer")
    who = clinic.services.auth.current_user(issued.access_token)
    assert who is not None
    return who


def staff(clinic: Clinic) -> Principal:
    name = uid("dr")[:30]
    clinic.services.auth.add_user(
        SYSTEM,
        NewUser(username=name, password=PASSWORD, role="clinician", clinic_id=clinic.clinic_id),
    )
    return signed_in(clinic, name)


def dose(day: dt.date, given_by: str | None = None) -> AdministrationIn:
    return AdministrationIn(
        date=day, product="hydroxocobalamin", dose=1, unit="mg", route="IM", given_by=given_by
    )


def test_carer_linked_by_the_clinic_sees_the_schedule_and_logs_doses_as_carer(
    clinic: Clinic,
) -> None:
    pid = ada(clinic)
    other = ada(clinic)
    name = carer_account(clinic)
    clinic.clock.set(dt.date(2026, 4, 9))
    with pytest.raises(InvalidInput):  # the patient's consent must be recorded
        clinic.services.carers.link_by_clinic(staff(clinic), name, pid, consent_note=" ")
    clinic.services.carers.link_by_clinic(
        staff(clinic), name, pid, consent_note="Ada agreed at her 2 April appointment"
    )
    grace = signed_in(clinic, name)
    records = clinic.services.records
    assessment = records.assess_patient(grace, pid)
    assert assessment.next_dose is not None
    stored = records.add_record(grace, pid, dose(dt.date(2026, 4, 9)))
    assert stored.data.given_by == "carer"
    assert [r.id for r in records.list_records(grace, pid, KINDS["administrations"])]
    with pytest.raises(Forbidden):
        records.add_record(grace, pid, dose(dt.date(2026, 4, 9), given_by="clinic"))
    with pytest.raises(Forbidden):
        records.add_record(
            grace, pid, SymptomIn(code="fatigue", date=dt.date(2026, 4, 9), status="present")
        )
    with pytest.raises(Forbidden):
        records.list_records(grace, pid, KINDS["observations"])
    with pytest.raises(Forbidden):
        records.audit_trail(grace, pid)
    with pytest.raises(Forbidden):
        records.case_document(grace, pid)
    with pytest.raises(Forbidden):
        records.worklist(grace, WorklistQuery())
    with pytest.raises(NotFound):  # an unlinked patient does not exist for a carer
        records.assess_patient(grace, other)
    assert [p.id for p in records.list_patients(grace).items] == [pid]


def test_patient_invites_a_carer_who_then_gets_the_same_reminders(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10)
    patient_name = uid("pat")[:30]
    clinic.services.auth.add_user(
        SYSTEM, NewUser(username=patient_name, password=PASSWORD, role="patient", patient_id=pid)
    )
    patient = signed_in(clinic, patient_name)
    code = clinic.services.carers.invite(patient)
    grace = signed_in(clinic, carer_account(clinic))
    link = clinic.services.carers.accept(grace, code, email="grace@carers.test")
    assert (link.consent, link.patient_id) == ("patient", pid)
    with pytest.raises(InvalidInput):  # a code works once
        clinic.services.carers.accept(signed_in(clinic, carer_account(clinic)), code)
    assert [c.username for c in clinic.services.carers.carers_of(patient, pid)] == [link.username]

    clinic.clock.set(dt.date(2026, 3, 31))
    clinic.services.reminders.run(patient_ids=[pid])
    to_grace = clinic.mailbox.to("grace@carers.test")
    to_ada = clinic.mailbox.to(f"{pid}@patients.test")
    assert sorted(str(m["Subject"]) for m in to_grace) == sorted(
        str(m["Subject"]) for m in to_ada
    )  # the same reminders as the patient
    assert "Book your B12 injection appointment: due Friday 10 April 2026" in [
        str(m["Subject"]) for m in to_grace
    ]
    body = to_grace[0].get_body(("plain",))
    assert body is not None and "Ada Lovelace" in body.get_content()

    clinic.services.carers.unlink(patient, link.carer_user_id, pid)
    again = signed_in(clinic, link.username)
    with pytest.raises(NotFound):
        clinic.services.records.assess_patient(again, pid)


def test_expired_invitation_is_refused(clinic: Clinic) -> None:
    pid = ada(clinic)
    patient_name = uid("pat")[:30]
    clinic.services.auth.add_user(
        SYSTEM, NewUser(username=patient_name, password=PASSWORD, role="patient", patient_id=pid)
    )
    code = clinic.services.carers.invite(signed_in(clinic, patient_name))
    grace = signed_in(clinic, carer_account(clinic))
    clinic.clock.instant += dt.timedelta(days=8)
    with pytest.raises(InvalidInput):
        clinic.services.carers.accept(grace, code)


def test_carer_cannot_link_themselves_or_invite(clinic: Clinic) -> None:
    pid = ada(clinic)
    name = carer_account(clinic)
    grace = signed_in(clinic, name)
    with pytest.raises(Forbidden):
        clinic.services.carers.link_by_clinic(grace, name, pid, consent_note="I say so")
    with pytest.raises(Forbidden):
        clinic.services.carers.invite(grace)
    with pytest.raises(NotFound):
        clinic.services.carers.carers_of(grace, pid)
