"""Contract v1.1 through the REST API: who reported a symptom, clinicians' decisions, prior
treatment and death, from the request to the stored patient's assessment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_api import assert_problem
from tests.store.support import TODAY

NEURO_PATIENT = "/api/v1/patients/demo-01"  # pat.demo's own record: neurological loading
DAY = TODAY.isoformat()
SETTLED = ("paraesthesia", "numbness")


def loading(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    assessment: dict[str, Any] = api.client.get(
        f"{NEURO_PATIENT}/assessment", headers=headers
    ).json()
    return assessment


def test_a_patient_saying_clinician_is_stored_as_the_patient(api: Api) -> None:
    body = {"code": "fatigue", "date": DAY, "status": "improving", "reporter": "clinician"}
    created = api.client.post(f"{NEURO_PATIENT}/symptoms", headers=api.patient(), json=body)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["reporter"] == "patient"
    case = api.client.get(f"{NEURO_PATIENT}/case", headers=api.clinician()).json()
    mine = [s for s in case["symptoms"] if s["date"] == DAY and s["code"] == "fatigue"]
    assert [s["reporter"] for s in mine] == ["patient"]


def test_a_patient_may_say_a_carer_wrote_it_and_a_clinician_may_record_for_the_patient(
    api: Api,
) -> None:
    body = {"code": "fatigue", "date": DAY, "status": "present", "reporter": "carer"}
    carer = api.client.post(f"{NEURO_PATIENT}/symptoms", headers=api.patient(), json=body)
    assert carer.json()["data"]["reporter"] == "carer"
    by_phone = {**body, "reporter": "patient"}
    phoned = api.client.post(f"{NEURO_PATIENT}/symptoms", headers=api.clinician(), json=by_phone)
    assert phoned.json()["data"]["reporter"] == "patient"
    own = {k: v for k, v in body.items() if k != "reporter"}
    clinic = api.client.post(f"{NEURO_PATIENT}/symptoms", headers=api.clinician(), json=own)
    assert clinic.json()["data"]["reporter"] == "clinician"


def test_a_patient_correcting_their_entry_cannot_make_it_a_clinicians(api: Api) -> None:
    headers = api.patient()
    body = {"code": "numbness", "date": DAY, "status": "resolved"}
    record = api.client.post(f"{NEURO_PATIENT}/symptoms", headers=headers, json=body).json()
    forged = {**body, "reporter": "clinician"}
    corrected = api.client.put(
        f"{NEURO_PATIENT}/symptoms/{record['id']}",
        headers={**headers, "If-Match": '"1"'},
        json=forged,
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["data"]["reporter"] == "patient"


def test_a_patients_resolved_diary_does_not_end_neurological_loading_but_a_decision_does(
    api: Api,
) -> None:
    patient, clinician = api.patient(), api.clinician()
    before = loading(api, clinician)
    assert before["phase"] == "loading" and before["neurological"] is True
    for code in SETTLED:
        body = {"code": code, "date": DAY, "status": "resolved"}
        assert api.client.post(f"{NEURO_PATIENT}/symptoms", headers=patient, json=body).is_success
    after = loading(api, clinician)
    codes = {f["code"] for f in after["findings"]}
    assert after["phase"] == "loading"
    assert after["regimen"]["loading"]["complete"] is False
    assert "NEURO_REVIEW_DUE" in codes

    decision = {
        "code": "neuro_loading_complete",
        "date": DAY,
        "reason": "Reviewed in clinic: no further improvement since the last visit.",
    }
    made = api.client.post(f"{NEURO_PATIENT}/decisions", headers=clinician, json=decision)
    assert made.status_code == 201, made.text
    assert made.json()["data"]["by"] == "dr.demo"
    ended = loading(api, clinician)
    assert ended["regimen"]["loading"]["complete"] is True
    assert "NEURO_REVIEW_DUE" not in {f["code"] for f in ended["findings"]}
    audit = api.client.get(f"{NEURO_PATIENT}/audit", headers=clinician).json()["items"]
    assert (audit[0]["action"], audit[0]["entity_type"]) == ("create", "decisions")


@pytest.mark.parametrize("who", ["patient", "admin"])
def test_only_a_clinician_records_a_decision(api: Api, who: str) -> None:
    headers = api.patient() if who == "patient" else api.admin()
    decision = {"code": "rechallenge_cleared", "date": DAY, "reason": "Allergy clinic review."}
    assert_problem(
        api.client.post(f"{NEURO_PATIENT}/decisions", headers=headers, json=decision), 403
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"code": "neuro_loading_complete", "date": DAY}, "reason"),
        ({"code": "neuro_loading_complete", "date": DAY, "reason": "   "}, "reason"),
        ({"code": "stop_everything", "date": DAY, "reason": "because"}, "code"),
        ({"code": "neuro_loading_complete", "date": "2099-01-01", "reason": "x"}, "date"),
    ],
    ids=["no-reason", "blank-reason", "unknown-code", "future"],
)
def test_a_decision_without_a_reason_or_a_known_code_is_a_422_problem(
    api: Api, body: dict[str, Any], loc: str
) -> None:
    response = api.client.post(f"{NEURO_PATIENT}/decisions", headers=api.clinician(), json=body)
    assert_problem(response, 422, loc)


def test_prior_treatment_is_one_record_per_patient_and_reaches_the_core(api: Api) -> None:
    headers = api.clinician()
    url = "/api/v1/patients/demo-02/prior-treatment"
    body = {"since": "2024-02-01", "loading_completed": True}
    first = api.client.post(url, headers=headers, json=body)
    assert first.status_code == 201, first.text
    assert_problem(api.client.post(url, headers=headers, json=body), 422, "since")
    own = f"{NEURO_PATIENT}/prior-treatment"
    assert_problem(api.client.post(own, headers=api.patient(), json=body), 403)
    assessment = api.client.get("/api/v1/patients/demo-02/assessment", headers=headers).json()
    assert "MAINTENANCE_WITHOUT_LOADING" not in {f["code"] for f in assessment["findings"]}


def test_a_recorded_death_leaves_no_plan(api: Api) -> None:
    headers = api.clinician()
    url = "/api/v1/patients/demo-02"
    current = api.client.get(url, headers=headers)
    changed = {
        k: current.json()[k] for k in ("display_name", "sex", "birth_date", "jurisdiction")
    } | {"deceased_date": DAY}
    put = api.client.put(
        url, headers={**headers, "If-Match": current.headers["etag"]}, json=changed
    )
    assert put.status_code == 200, put.text
    assert put.json()["deceased_date"] == DAY
    assessment = api.client.get(f"{url}/assessment", headers=headers).json()
    assert [f["code"] for f in assessment["findings"]] == ["PATIENT_DECEASED"]
    assert assessment["next_dose"] is None and assessment["schedule"] == []
    future = {**changed, "deceased_date": "2099-01-01"}
    assert_problem(
        api.client.put(url, headers={**headers, "If-Match": put.headers["etag"]}, json=future),
        422,
        "deceased_date",
    )


def test_breastfeeding_is_a_cause_from_the_knowledge_base(api: Api) -> None:
    url = "/api/v1/patients/demo-02/causes"
    created = api.client.post(url, headers=api.clinician(), json={"code": "breastfeeding"})
    assert created.status_code == 201, created.text


def test_the_openapi_document_lists_decisions_and_prior_treatment(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for segment in ("decisions", "prior-treatment"):
        post = paths[f"/api/v1/patients/{{patient_id}}/{segment}"]["post"]
        assert {"403", "422"} <= set(post["responses"])
        assert "application/problem+json" in post["responses"]["422"]["content"]
