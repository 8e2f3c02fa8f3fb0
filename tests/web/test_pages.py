"""The web UI through FastAPI's TestClient on the real app: pages, forms, access, answers."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from fastapi.testclient import TestClient

from b12plan.app import Services
from b12plan.service import KINDS, Principal
from b12plan.service.schemas import NewPatient
from tests.web.conftest import (
    ADMIN,
    CLINICIAN,
    OTHER_CLINIC_ID,
    OVERDUE_ID,
    PATIENT,
    PATIENT_ID,
    TODAY,
    sign_in,
)


def text_of(html: str, element_id: str) -> str:
    """The text of the element with this id (elements of the same tag are not nested here)."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no element #{element_id}"
    return html_lib.unescape(" ".join(re.sub(r"<[^>]+>", "", match.group(2)).split()))


def field_error(html: str, field_id: str) -> str:
    match = re.search(rf'id="{field_id}-error">(.*?)</p>', html, re.S)
    assert match, f"no error shown for #{field_id}"
    return html_lib.unescape(re.sub(r"<[^>]+>", "", match.group(1)).replace("Error: ", "")).strip()


# --- signing in --------------------------------------------------------------------------------


def test_a_visitor_is_sent_to_sign_in_and_back(visitor: TestClient) -> None:
    response = visitor.get("/clinic", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fclinic"
    signed = visitor.post(
        "/login",
        data={"username": CLINICIAN[0], "password": CLINICIAN[1], "next": "/clinic/patients"},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/clinic/patients"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_a_wrong_password_is_said_next_to_the_form(visitor: TestClient) -> None:
    response = visitor.post("/login", data={"username": "dr.demo", "password": "nope"})
    assert response.status_code == 422
    assert "Wrong username or password." in response.text
    assert "set-cookie" not in response.headers


def test_sign_in_never_redirects_off_site(visitor: TestClient) -> None:
    response = visitor.post(
        "/login",
        data={"username": PATIENT[0], "password": PATIENT[1], "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/me"


def test_signing_out_ends_the_session(clinician: TestClient) -> None:
    clinician.post("/logout")
    assert clinician.get("/clinic", follow_redirects=False).status_code == 303


def test_a_cross_site_form_post_is_refused(viewing_clinician: TestClient) -> None:
    response = viewing_clinician.post(
        f"/clinic/patients/{OVERDUE_ID}/symptom",
        data={"date": TODAY.isoformat(), "code": "fatigue", "status": "present"},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403


# --- access ----------------------------------------------------------------------------------


def test_a_patient_cannot_open_another_patients_page(viewing_patient: TestClient) -> None:
    response = viewing_patient.get(f"/clinic/patients/{OVERDUE_ID}")
    assert response.status_code == 403
    assert "This page is for clinic staff" in response.text
    assert "Demo 03" not in response.text


def test_a_patient_cannot_open_clinic_views_of_their_own_record(
    viewing_patient: TestClient,
) -> None:
    assert viewing_patient.get(f"/clinic/patients/{PATIENT_ID}").status_code == 403
    assert viewing_patient.get("/clinic").status_code == 403


def test_a_clinician_does_not_see_another_clinics_patient(viewing_clinician: TestClient) -> None:
    response = viewing_clinician.get(f"/clinic/patients/{OTHER_CLINIC_ID}")
    assert response.status_code == 404


def test_patient_pages_are_for_patients(viewing_clinician: TestClient) -> None:
    assert viewing_clinician.get("/me").status_code == 403


# --- worklist ----------------------------------------------------------------------------------


def test_worklist_puts_overdue_before_loading_and_links_each_row(
    viewing_clinician: TestClient,
) -> None:
    html = viewing_clinician.get("/clinic").text
    overdue = html.index('id="group-overdue"')
    loading = html.index('id="group-loading"')
    assert overdue < loading
    section = html[overdue:loading]
    assert f'href="/clinic/patients/{OVERDUE_ID}"' in section
    assert f'href="/clinic/patients/{PATIENT_ID}"' in html[loading:]
    assert OTHER_CLINIC_ID not in html  # another clinic's patient


def test_worklist_filters_by_finding_code(viewing_clinician: TestClient) -> None:
    html = viewing_clinician.get("/clinic", params={"code": "MAINTENANCE_WITHOUT_LOADING"}).text
    rows = re.findall(r'data-patient="([^"]+)"', html)
    assert rows == ["demo-02"]


def test_worklist_filters_by_clinic_for_an_admin(visitor: TestClient) -> None:
    sign_in(visitor, ADMIN)
    everyone = re.findall(r'data-patient="([^"]+)"', visitor.get("/clinic").text)
    assert OTHER_CLINIC_ID in everyone
    riverside = visitor.get("/clinic", params={"clinic": "riverside"}).text
    assert re.findall(r'data-patient="([^"]+)"', riverside) == [OTHER_CLINIC_ID]


# --- the patient page and its forms -----------------------------------------------------------


def test_patient_page_shows_phase_regimen_window_and_explained_findings(
    viewing_clinician: TestClient,
) -> None:
    response = viewing_clinician.get(f"/clinic/patients/{OVERDUE_ID}")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    html = response.text
    assert text_of(html, "phase") == "maintenance"
    assert "overdue by" in text_of(html, "next-dose-state")
    assert "Hydroxocobalamin 1 mg IM, no neurological involvement (UK)" in html
    assert "INJECTION_OVERDUE" in html
    assert "Give the dose now and re-plan from it." in html  # the finding's advice
    assert 'href="https://www.nice.org.uk/guidance/ng239"' in html  # its source
    assert 'data-chart="timeline-data"' in html


def test_recording_an_injection_moves_the_next_due_date(clinician: TestClient) -> None:
    before = text_of(clinician.get(f"/clinic/patients/{OVERDUE_ID}").text, "next-dose-due")
    response = clinician.post(
        f"/clinic/patients/{OVERDUE_ID}/injection",
        data={
            "date": TODAY.isoformat(),
            "product": "hydroxocobalamin",
            "dose": "1",
            "unit": "mg",
            "route": "IM",
            "site": "left upper arm",
            "given_by": "clinic",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    html = clinician.get(response.headers["location"]).text
    after = text_of(html, "next-dose-due")
    assert after != before
    assert after == "Due Mon 25 May 2026"  # 84 days after today (maintenance every 3 months)
    assert "Injection recorded." in html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dose", "one", "enter a number"),
        ("date", "2026-03-09", "is in the future"),
        ("unit", "tablets", "'tablets' is not offered here"),
    ],
)
def test_injection_form_errors_are_shown_next_to_the_field(
    viewing_clinician: TestClient, field: str, value: str, message: str
) -> None:
    data = {
        "date": TODAY.isoformat(),
        "product": "hydroxocobalamin",
        "dose": "1",
        "unit": "mg",
        "route": "IM",
    }
    data[field] = value
    response = viewing_clinician.post(f"/clinic/patients/{OVERDUE_ID}/injection", data=data)
    assert response.status_code == 422
    assert message in field_error(response.text, f"injection-{field}").lower()
    assert f'id="injection-{field}" name="{field}"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert '<details class="panel" id="injection" open>' in response.text


def test_a_lab_unit_that_does_not_fit_the_test_is_refused(viewing_clinician: TestClient) -> None:
    response = viewing_clinician.post(
        f"/clinic/patients/{OVERDUE_ID}/lab",
        data={"date": TODAY.isoformat(), "code": "mma", "value": "0.3", "unit": "pmol/L"},
    )
    assert response.status_code == 422
    message = field_error(response.text, "lab-unit")
    assert "pmol/L" in message
    assert "umol/L" in message  # names what is accepted
    # the unit list now offers the chosen test's units
    assert '<option value="nmol/L"' in response.text


def test_a_lab_result_in_another_unit_is_recorded(
    clinician: TestClient, services: Services
) -> None:
    response = clinician.post(
        f"/clinic/patients/{OVERDUE_ID}/lab",
        data={"date": TODAY.isoformat(), "code": "haemoglobin", "value": "12.1", "unit": "g/dL"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    system = Principal.system("test")
    stored = services.records.list_records(system, OVERDUE_ID, KINDS["observations"])
    assert any(r.data.unit == "g/dL" and r.data.value == 12.1 for r in stored)


def test_the_unit_list_follows_the_chosen_test(viewing_clinician: TestClient) -> None:
    html = viewing_clinician.get("/clinic/lab-units", params={"code": "mma"}).text
    assert re.findall(r'<option value="([^"]+)"', html) == ["umol/L", "µmol/L", "nmol/L"]
    assert 'id="lab-unit-field"' in html


def test_symptom_adverse_event_and_prescription_forms_record(
    clinician: TestClient, services: Services
) -> None:
    base = f"/clinic/patients/{OVERDUE_ID}"
    day = TODAY.isoformat()
    posts = {
        "symptom": {"date": day, "code": "fatigue", "status": "improving"},
        "adverse-event": {"date": day, "code": "injection_site_pain"},
        "prescription": {
            "product": "hydroxocobalamin",
            "dose": "1",
            "unit": "mg",
            "route": "IM",
            "phase": "maintenance",
            "interval_days": "56",
            "start": day,
            "note": "symptoms return before the dose",
        },
    }
    for form, data in posts.items():
        response = clinician.post(f"{base}/{form}", data=data, follow_redirects=False)
        assert response.status_code == 303, (form, response.text[:2000])
    html = clinician.get(base).text
    assert "every 56 days from 2026-03-02" in html


def test_a_prescription_interval_must_be_whole_days(viewing_clinician: TestClient) -> None:
    response = viewing_clinician.post(
        f"/clinic/patients/{OVERDUE_ID}/prescription",
        data={
            "product": "hydroxocobalamin",
            "dose": "1",
            "unit": "mg",
            "route": "IM",
            "phase": "maintenance",
            "interval_days": "two months",
            "start": TODAY.isoformat(),
        },
    )
    assert response.status_code == 422
    assert "whole number" in field_error(response.text, "prescription-interval_days")


def test_printable_summary_has_no_forms(viewing_clinician: TestClient) -> None:
    html = viewing_clinician.get(f"/clinic/patients/{OVERDUE_ID}/print").text
    assert "B12 injection therapy summary" in html
    assert "<form" not in html
    assert "INJECTION_OVERDUE" in html


# --- patient views ------------------------------------------------------------------------------


def test_my_schedule_shows_the_window_doses_checks_and_calendar(
    viewing_patient: TestClient,
) -> None:
    html = viewing_patient.get("/me").text
    assert text_of(html, "next-dose-due").startswith("Due ")
    assert 'href="/me/calendar.ics"' in html
    assert "Upcoming doses" in html
    ics = viewing_patient.get("/me/calendar.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert ics.text.count("BEGIN:VEVENT") >= 6


def test_a_self_injection_is_logged_as_given_by_self(
    patient: TestClient, services: Services
) -> None:
    page = patient.get("/me/log").text
    assert "No site recorded yet" in text_of(page, "rotation-hint")
    response = patient.post(
        "/me/injections",
        data={
            "date": TODAY.isoformat(),
            "product": "hydroxocobalamin",
            "dose": "1",
            "unit": "mg",
            "route": "IM",
            "site": "right thigh",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    system = Principal.system("test")
    stored = services.records.list_records(system, PATIENT_ID, KINDS["administrations"])
    mine = [r for r in stored if r.data.date == TODAY]
    assert [(r.data.given_by, r.data.site) for r in mine] == [("self", "right thigh")]
    hint = text_of(patient.get("/me/log").text, "rotation-hint")
    assert "you used the right thigh. Try the left buttock this time." in hint


def test_the_diary_records_contract_codes_with_scores(
    patient: TestClient, services: Services
) -> None:
    day = TODAY.isoformat()
    first = patient.post("/me/diary", data={"date": day, "fatigue": "7", "tingling": "4"})
    assert first.status_code == 200  # followed the redirect
    assert "your diary is saved" in first.text
    system = Principal.system("test")
    stored = [
        r
        for r in services.records.list_records(system, PATIENT_ID, KINDS["symptoms"])
        if r.data.date == TODAY
    ]
    got = sorted((r.data.code, r.data.status, r.data.note) for r in stored)
    # the demo patient's tingling was "improving" before; fatigue was never reported
    assert got == [
        ("fatigue", "present", "diary score 7/10"),
        ("paraesthesia", "present", "diary score 4/10"),
    ]


def test_an_empty_diary_says_what_to_do(viewing_patient: TestClient) -> None:
    response = viewing_patient.post("/me/diary", data={"date": TODAY.isoformat()})
    assert response.status_code == 422
    assert "choose a score for at least one symptom" in response.text


def test_an_allergic_side_effect_shows_an_urgent_message(patient: TestClient) -> None:
    response = patient.post(
        "/me/side-effects", data={"date": TODAY.isoformat(), "code": "anaphylaxis"}
    )
    assert response.status_code == 200
    assert 'class="urgent" role="alert"' in response.text
    assert "Contact a clinician now" in response.text


def test_a_local_side_effect_is_recorded_without_alarm(patient: TestClient) -> None:
    response = patient.post(
        "/me/side-effects", data={"date": TODAY.isoformat(), "code": "injection_site_pain"}
    )
    assert "Contact a clinician now" not in response.text
    assert "your side effect is recorded" in response.text


def test_a_patient_may_not_log_a_dose_given_by_the_clinic(viewing_patient: TestClient) -> None:
    response = viewing_patient.post(
        "/me/injections",
        data={
            "date": TODAY.isoformat(),
            "product": "hydroxocobalamin",
            "dose": "1",
            "unit": "mg",
            "route": "IM",
            "given_by": "clinic",
        },
    )
    assert response.status_code == 422
    assert "choose one: self, carer" in field_error(response.text, "self-injection-given_by")


def test_questions_are_answered_for_this_patient_with_sources(viewing_patient: TestClient) -> None:
    html = viewing_patient.get("/me/questions").text
    for question_id in ("why-loading", "once-a-month", "feel-better", "switch-monthly"):
        assert f'id="{question_id}"' in html
    assert "Hydroxocobalamin 1 mg IM, neurological involvement (UK)" in html
    assert "about you" in html
    assert html.count('class="source">Source:') >= 5


# --- static assets ------------------------------------------------------------------------------


def test_scripts_are_served_locally(visitor: TestClient) -> None:
    htmx = visitor.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200
    assert htmx.headers["content-type"].startswith("text/javascript")
    plotly = visitor.get("/static/vendor/plotly.min.js")
    assert plotly.status_code == 200
    assert len(plotly.content) > 1_000_000
    assert visitor.get("/static/../app.py").status_code == 404
    assert visitor.get("/static/routes.py").status_code == 404


def test_pages_load_nothing_from_other_sites(viewing_patient: TestClient) -> None:
    for path in ("/me", "/me/log", "/me/questions"):
        html = viewing_patient.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//(?!www\.nice|bnf|cks|doi|dailymed)', html)


@pytest.mark.parametrize("patient_id", [f"demo-0{i}" for i in range(1, 7)])
def test_every_demo_patient_page_and_summary_render(visitor: TestClient, patient_id: str) -> None:
    sign_in(visitor, ADMIN)
    page = visitor.get(f"/clinic/patients/{patient_id}")
    assert page.status_code == 200
    assert 'id="next-dose-due"' in page.text
    assert visitor.get(f"/clinic/patients/{patient_id}/print").status_code == 200


def test_a_new_patient_with_no_records_has_a_page(
    clinician: TestClient, services: Services
) -> None:
    who = Principal.system("test")
    services.records.create_patient(
        who, NewPatient(display_name="Empty record", clinic_id="demo-clinic"), patient_id="new-1"
    )
    html = clinician.get("/clinic/patients/new-1").text
    assert text_of(html, "next-dose-due") == "No dose planned"
    assert "INSUFFICIENT_DATA" in html
