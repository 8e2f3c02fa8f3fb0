"""Use cases the web pages call and the REST API could call too: the diary, the one prior
treatment record, the stored case as a parsed ``Case``."""

from __future__ import annotations

import datetime as dt

import pytest

from b12plan.app import Services
from b12plan.service import KINDS, Forbidden, InvalidInput, Principal
from b12plan.service.diary import save_diary
from b12plan.service.schemas import NewPatient, PriorTreatmentIn
from tests.web.conftest import CLINICIAN, PATIENT, PATIENT_ID, TODAY


def signed_in(services: Services, credentials: tuple[str, str]) -> Principal:
    who = services.auth.current_user(services.auth.login(*credentials).access_token)
    assert who is not None
    return who


def symptom_count(services: Services) -> int:
    system = Principal.system("tests")
    return len(services.records.list_records(system, PATIENT_ID, KINDS["symptoms"]))


def test_a_diary_entry_is_stored_as_the_patients_and_compared_with_the_last(
    services: Services,
) -> None:
    who = signed_in(services, PATIENT)
    yesterday = TODAY - dt.timedelta(days=1)
    first = save_diary(services.records, who, PATIENT_ID, yesterday, {"fatigue": 3})
    assert [(r.data.code, r.data.status, r.data.reporter) for r in first] == [
        ("fatigue", "present", "patient")
    ]
    second = save_diary(services.records, who, PATIENT_ID, TODAY, {"fatigue": 8})
    assert [(r.data.code, r.data.status) for r in second] == [("fatigue", "worsening")]


def test_a_diary_with_nothing_to_record_or_a_bad_date_stores_nothing(services: Services) -> None:
    who = signed_in(services, PATIENT)
    before = symptom_count(services)
    with pytest.raises(InvalidInput) as blank:
        save_diary(services.records, who, PATIENT_ID, TODAY, {"fatigue": None})
    assert blank.value.errors[0]["type"] == "nothing_to_record"
    tomorrow = TODAY + dt.timedelta(days=1)
    with pytest.raises(InvalidInput) as future:
        save_diary(services.records, who, PATIENT_ID, tomorrow, {"fatigue": 4, "balance": 5})
    assert {e["type"] for e in future.value.errors} == {"date_in_future"}
    assert symptom_count(services) == before  # all or nothing: no half-saved diary


def test_prior_treatment_is_one_record_saved_again_as_a_correction(services: Services) -> None:
    who = signed_in(services, CLINICIAN)
    since = TODAY - dt.timedelta(days=400)
    first = services.records.save_prior_treatment(
        who, PATIENT_ID, PriorTreatmentIn(since=since, loading_completed=False)
    )
    again = services.records.save_prior_treatment(
        who, PATIENT_ID, PriorTreatmentIn(since=since, loading_completed=True)
    )
    assert again.id == first.id and again.version == first.version + 1
    current = services.records.list_records(who, PATIENT_ID, KINDS["prior_treatment"])
    assert [(r.id, r.data.loading_completed) for r in current] == [(first.id, True)]
    case = services.records.patient_case(who, PATIENT_ID, as_of=TODAY)
    assert case.prior_treatment is not None and case.prior_treatment.loading_completed


def test_the_parsed_case_is_the_whole_record_so_not_for_carers(services: Services) -> None:
    carer = Principal(user_id=None, username="carer", role="carer", patient_ids=(PATIENT_ID,))
    with pytest.raises(Forbidden):
        services.records.patient_case(carer, PATIENT_ID, as_of=TODAY)
    case = services.records.patient_case(signed_in(services, PATIENT), PATIENT_ID, as_of=TODAY)
    assert case.patient.id == PATIENT_ID and case.as_of == TODAY


def test_a_planned_dose_takes_the_regimen_and_nothing_is_guessed_without_one(
    services: Services,
) -> None:
    who = signed_in(services, CLINICIAN)
    regimen = services.records.assess_patient(who, PATIENT_ID, as_of=TODAY).regimen
    assert regimen is not None
    logged = services.records.log_planned_dose(who, PATIENT_ID, TODAY, site="  left thigh ")
    d = logged.data
    assert (d.product, d.dose, d.unit, d.route) == (
        regimen.product,
        regimen.dose,
        regimen.unit,
        regimen.route,
    )
    assert (d.date, d.site) == (TODAY, "left thigh")
    with pytest.raises(InvalidInput) as too_long:
        services.records.log_planned_dose(who, PATIENT_ID, TODAY, site="x" * 501)
    assert [e["loc"] for e in too_long.value.errors] == ["site"]
    services.records.create_patient(
        who, NewPatient(display_name="Empty record", clinic_id="demo-clinic"), patient_id="new-1"
    )
    with pytest.raises(InvalidInput) as no_plan:
        services.records.log_planned_dose(who, "new-1", TODAY)
    assert [(e["loc"], e["type"]) for e in no_plan.value.errors] == [("date", "no_regimen")]
    assert services.records.list_records(who, "new-1", KINDS["administrations"]) == []
