"""The clinic's lists: due in the next N days, and reminded but no dose recorded."""

from __future__ import annotations

import datetime as dt

import pytest

from b12plan.service import Forbidden, Principal
from b12plan.service.schemas import NewClinic
from tests.reminders.conftest import Clinic
from tests.reminders.test_carers import PASSWORD, dose, signed_in, staff
from tests.reminders.test_delivery import SYSTEM, ada
from tests.store.support import uid


def test_reminded_patient_without_a_dose_is_on_the_did_not_attend_list(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10)
    service = clinic.services.reminders
    clinic.clock.set(dt.date(2026, 3, 31))
    service.run(patient_ids=[pid])
    nurse = staff(clinic)
    assert pid not in [r.patient_id for r in service.did_not_attend(nurse, dt.date(2026, 4, 9))]
    late = service.did_not_attend(nurse, dt.date(2026, 4, 15))
    mine = [r for r in late if r.patient_id == pid]
    assert [(r.due, r.reminded_on, r.days_late) for r in mine] == [
        (dt.date(2026, 4, 10), dt.date(2026, 3, 31), 5)
    ]
    clinic.clock.set(dt.date(2026, 4, 16))
    clinic.services.records.add_record(SYSTEM, pid, dose(dt.date(2026, 4, 16), "clinic"))
    assert pid not in [r.patient_id for r in service.did_not_attend(nurse, dt.date(2026, 4, 16))]


def test_booking_list_holds_the_clinic_doses_due_in_the_next_days(clinic: Clinic) -> None:
    pid = ada(clinic)
    nurse = staff(clinic)
    service = clinic.services.reminders
    within = service.booking_list(nurse, dt.date(2026, 3, 31), 14)
    assert [(r.what, r.due) for r in within if r.patient_id == pid] == [
        ("B12 injection", dt.date(2026, 4, 10))
    ]
    assert not [
        r for r in service.booking_list(nurse, dt.date(2026, 3, 31), 5) if r.patient_id == pid
    ]


def test_clinic_lists_are_for_the_clinics_own_staff(clinic: Clinic) -> None:
    pid = ada(clinic)
    service = clinic.services.reminders
    elsewhere = uid("clinic")
    clinic.services.auth.add_clinic(SYSTEM, NewClinic(id=elsewhere, name="Far away"))
    from b12plan.service.schemas import NewUser

    name = uid("dr")[:30]
    clinic.services.auth.add_user(
        SYSTEM, NewUser(username=name, password=PASSWORD, role="clinician", clinic_id=elsewhere)
    )
    outsider = signed_in(clinic, name)
    assert not service.booking_list(outsider, dt.date(2026, 3, 31), 30)
    patient = Principal(user_id="x", username="p", role="patient", patient_id=pid)
    with pytest.raises(Forbidden):
        service.booking_list(patient, dt.date(2026, 3, 31), 30)
    with pytest.raises(Forbidden):
        service.did_not_attend(patient, dt.date(2026, 3, 31))
