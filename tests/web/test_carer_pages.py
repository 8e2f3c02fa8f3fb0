"""Carer pages through the real app: a carer reaches the people they care for, logs doses as
carer, and never reaches an unlinked patient or the clinic's pages (attacks first)."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from b12plan.app import Services
from b12plan.service import Principal
from b12plan.service.schemas import KINDS, NewUser
from tests.web.conftest import (
    OTHER_CLINIC_ID,
    OVERDUE_ID,
    PATIENT_ID,
    TODAY,
    browser_client,
    sign_in,
)

CARER = ("grace.carer", "grace-password-1")


@pytest.fixture
def carer(app: FastAPI, services: Services) -> TestClient:
    system = Principal.system("tests")
    services.auth.add_user(
        system, NewUser(username=CARER[0], password=CARER[1], role="carer", display_name="Grace")
    )
    services.carers.link_by_clinic(
        system, CARER[0], PATIENT_ID, consent_note="patient agreed in clinic, 1 March"
    )
    client = browser_client(app)
    response = client.post(
        "/login", data={"username": CARER[0], "password": CARER[1]}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/carer"
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/clinic",
        "/clinic/patients",
        f"/clinic/patients/{PATIENT_ID}",
        f"/clinic/patients/{PATIENT_ID}/print",
        "/me",
        "/me/log",
        "/me/settings",
        "/me/calendar.ics",
    ],
)
def test_carer_never_reaches_clinic_or_patient_pages(carer: TestClient, path: str) -> None:
    assert carer.get(path, follow_redirects=False).status_code == 403


@pytest.mark.parametrize("patient_id", [OVERDUE_ID, OTHER_CLINIC_ID, "../admin", "x" * 80])
def test_carer_never_reaches_an_unlinked_patient(carer: TestClient, patient_id: str) -> None:
    assert carer.get(f"/carer/patients/{patient_id}").status_code == 404
    posted = carer.post(f"/carer/patients/{patient_id}/dose", data={"date": TODAY.isoformat()})
    assert posted.status_code == 404


def test_carer_cannot_post_clinic_forms(carer: TestClient, services: Services) -> None:
    before = services.records.list_records(Principal.system("t"), PATIENT_ID, KINDS["observations"])
    response = carer.post(
        f"/clinic/patients/{PATIENT_ID}/lab",
        data={"date": TODAY.isoformat(), "code": "b12_total", "value": "500", "unit": "pmol/L"},
    )
    assert response.status_code == 403
    after = services.records.list_records(Principal.system("t"), PATIENT_ID, KINDS["observations"])
    assert len(after) == len(before)


def test_carer_api_reach_is_the_schedule_and_the_doses(carer: TestClient) -> None:
    assert carer.get(f"/api/v1/patients/{PATIENT_ID}/assessment").status_code == 200
    assert carer.get(f"/api/v1/patients/{PATIENT_ID}/administrations").status_code == 200
    for path in ("observations", "symptoms", "audit"):
        assert carer.get(f"/api/v1/patients/{PATIENT_ID}/{path}").status_code == 403, path
    assert carer.get(f"/api/v1/patients/{OVERDUE_ID}/assessment").status_code == 404
    assert carer.get("/api/v1/worklist").status_code == 403


def test_carer_sees_the_schedule_and_logs_a_dose_as_carer(
    carer: TestClient, services: Services
) -> None:
    home = carer.get("/carer")
    assert home.status_code == 200 and f"/carer/patients/{PATIENT_ID}" in home.text
    page = carer.get(f"/carer/patients/{PATIENT_ID}")
    assert page.status_code == 200 and "Log an injection I gave" in page.text
    assert "style=" not in page.text and "<script>" not in page.text
    saved = carer.post(
        f"/carer/patients/{PATIENT_ID}/dose",
        data={"date": TODAY.isoformat(), "site": "left thigh"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    doses = services.records.list_records(
        Principal.system("t"), PATIENT_ID, KINDS["administrations"]
    )
    mine = [d for d in doses if d.data.site == "left thigh"]
    assert len(mine) == 1 and mine[0].data.given_by == "carer"


def test_future_dose_is_refused_with_the_reason(carer: TestClient) -> None:
    response = carer.post(f"/carer/patients/{PATIENT_ID}/dose", data={"date": "2099-01-01"})
    assert response.status_code == 422 and "in the future" in response.text


def test_patient_invites_and_the_carer_accepts(app: FastAPI, services: Services) -> None:
    system = Principal.system("tests")
    services.auth.add_user(system, NewUser(username="sam.carer", password=CARER[1], role="carer"))
    patient = sign_in(browser_client(app), ("pat.demo", "demo-patient"))
    invited = patient.post("/me/carers", data={"action": "invite"})
    code = re.search(r'<code id="invite-code">([^<]+)</code>', invited.text)
    assert code is not None
    sam = browser_client(app)
    sam.post("/login", data={"username": "sam.carer", "password": CARER[1]})
    assert sam.get(f"/carer/patients/{PATIENT_ID}").status_code == 404  # not yet
    accepted = sam.post(
        "/carer/accept",
        data={"code": code.group(1), "email": "sam@example.org"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert sam.get(f"/carer/patients/{PATIENT_ID}").status_code == 200
    assert "sam.carer" in patient.get("/me/carers").text
    again = browser_client(app)
    services.auth.add_user(system, NewUser(username="eve.carer", password=CARER[1], role="carer"))
    again.post("/login", data={"username": "eve.carer", "password": CARER[1]})
    reused = again.post("/carer/accept", data={"code": code.group(1)})
    assert reused.status_code == 422 and "not valid" in reused.text
