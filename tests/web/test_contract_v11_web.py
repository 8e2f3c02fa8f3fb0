"""Contract v1.1 in the web app: which doses counted, the allergic hold, clinicians' decisions,
prior treatment, escalation advice, and patient text that follows the assessment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from b12plan.app import Services
from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.assessment import Assessment
from b12plan.knowledge import load_knowledge
from b12plan.service import KINDS, Principal
from b12plan.service.schemas import AdverseEventIn
from b12plan.web.answers import patient_answers
from b12plan.web.page_models import (
    DOSE_REASONS,
    dose_validity_view,
    escalation_advice,
    patient_notices,
    regimen_view,
)
from tests.web.conftest import PATIENT, PATIENT_ID, TODAY, browser_client, sign_in
from tests.web.test_pages import field_error, text_of

KNOWLEDGE = load_knowledge()
SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.json"))
DAY = TODAY.isoformat()
SYSTEM = Principal.system("tests")
FINISHED = re.compile(r"\b(finished loading|loading complete)\b", re.I)


def scenario(path: Path) -> Assessment:
    case = parse_case(json.loads(path.read_text())["case"], KNOWLEDGE)
    return evaluate(case, KNOWLEDGE, as_of=case.as_of)


def patient_text(assessment: Assessment) -> str:
    """Everything the patient's pages say that depends on the assessment."""
    parts = [f"{n.heading} {n.text}" for n in patient_notices(assessment, assessment.as_of)]
    regimen = regimen_view(assessment, KNOWLEDGE)
    if regimen is not None:
        parts.append(regimen.progress)
    parts += [p for a in patient_answers(assessment, KNOWLEDGE) for p in a.paragraphs]
    return " ".join(parts).lower()


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_patient_text_never_contradicts_the_assessment(path: Path) -> None:
    assessment = scenario(path)
    text = patient_text(assessment)
    regimen = assessment.regimen
    if regimen is None or not regimen.loading.complete:
        assert not FINISHED.search(text), FINISHED.search(text)
    oral = regimen is not None and regimen.route == "oral"
    if assessment.injections_on_hold or oral:
        assert "give it today" not in text
    if assessment.injections_on_hold:
        assert "your injections are on hold" in text


def test_the_allergic_hold_and_a_late_dose_are_told_differently() -> None:
    hold = scenario(Path(__file__).parents[1] / "scenarios" / "anaphylaxis-hold-never-overdue.json")
    assert [n.id for n in patient_notices(hold, hold.as_of)] == ["hold"]
    late = scenario(Path(__file__).parents[1] / "scenarios" / "maintenance-overdue.json")
    (notice,) = patient_notices(late, late.as_of)
    assert notice.id == "late" and "give it today" in notice.text


def test_every_dose_validity_reason_in_the_scenarios_has_plain_words() -> None:
    seen = {r for path in SCENARIOS for d in scenario(path).dose_validity for r in d.reasons}
    assert seen, "the scenarios judge no dose invalid: this test would prove nothing"
    assert seen <= set(DOSE_REASONS)
    doubled = scenario(
        Path(__file__).parents[1] / "scenarios" / "duplicate-and-antidote-doses-not-counted.json"
    )
    views = dose_validity_view(doubled)
    assert any(not v.valid and DOSE_REASONS["duplicate_same_day"] in v.reasons for v in views)


def test_escalation_advice_adds_the_severe_anaemia_warning_only_when_it_applies() -> None:
    severe = scenario(Path(__file__).parents[1] / "scenarios" / "severe-anaemia-potassium.json")
    plain = scenario(Path(__file__).parents[1] / "scenarios" / "gb-neuro-loading-in-progress.json")
    assert [e.urgency for e in escalation_advice(severe, KNOWLEDGE)] == [
        "emergency",
        "same-day",
        "same-day",
    ]
    advice = escalation_advice(plain, KNOWLEDGE)
    assert "palpitations" not in " ".join(e.when.lower() for e in advice)
    assert "emergency" in advice[0].action.lower()
    assert all(e.sources for e in advice)


# --- pages ----------------------------------------------------------------------------------


def test_the_clinicians_page_shows_which_doses_counted_and_the_decision_forms(
    clinician: TestClient,
) -> None:
    html = clinician.get(f"/clinic/patients/{PATIENT_ID}").text
    table = text_of(html, "dose-validity-table")
    assert "loading dose" in table
    assert 'id="decision-form"' in html and 'id="prior-treatment-form"' in html
    assert 'id="notice-hold"' not in html


def test_an_anaphylaxis_puts_injections_on_hold_on_every_page(
    clinician: TestClient, services: Services
) -> None:
    services.records.add_record(SYSTEM, PATIENT_ID, AdverseEventIn(code="anaphylaxis", date=TODAY))
    clinic = clinician.get(f"/clinic/patients/{PATIENT_ID}").text
    assert "Injections on hold" in text_of(clinic, "notice-hold")
    assert "Injections on hold" in clinician.get(f"/clinic/patients/{PATIENT_ID}/print").text
    me = sign_in(browser_client(clinician.app), PATIENT)
    home = me.get("/me").text
    assert "Your injections are on hold" in text_of(home, "notice-hold")
    assert "give it today" not in home
    assert "Your injections are on hold" in me.get("/me/log").text


def test_patient_pages_say_when_to_get_help(viewing_patient: TestClient) -> None:
    for page in ("/me", "/me/log"):
        advice = text_of(viewing_patient.get(page).text, "escalation")
        assert "Call the emergency number now" in advice
        assert "New or worsening numbness" in advice and "same day" in advice


def test_a_decision_needs_a_reason(clinician: TestClient) -> None:
    response = clinician.post(
        f"/clinic/patients/{PATIENT_ID}/decision",
        data={"code": "neuro_loading_complete", "date": DAY, "reason": ""},
    )
    assert response.status_code == 422
    assert field_error(response.text, "decision-reason") == "Enter the reason."


def neuro_phase(services: Services) -> Assessment:
    return services.records.assess_patient(SYSTEM, PATIENT_ID, as_of=TODAY)


def test_a_decision_in_the_web_form_ends_neurological_loading(
    clinician: TestClient, services: Services
) -> None:
    before = neuro_phase(services)
    assert before.regimen is not None and not before.regimen.loading.complete
    response = clinician.post(
        f"/clinic/patients/{PATIENT_ID}/decision",
        data={
            "code": "neuro_loading_complete",
            "date": DAY,
            "reason": "No further improvement in tingling or numbness since the last review.",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:2000]
    after = neuro_phase(services)
    assert after.regimen is not None and after.regimen.loading.complete
    html = clinician.get(f"/clinic/patients/{PATIENT_ID}").text
    assert "No further improvement in tingling" in text_of(html, "decisions")
    (stored,) = services.records.list_records(SYSTEM, PATIENT_ID, KINDS["decisions"])
    assert stored.data.by == "dr.demo"


def test_prior_treatment_is_added_then_corrected_from_the_same_form(
    clinician: TestClient, services: Services
) -> None:
    url = f"/clinic/patients/{PATIENT_ID}/prior-treatment"
    for answer in ("no", "yes"):
        response = clinician.post(
            url, data={"since": "2025-06-01", "loading_completed": answer}, follow_redirects=False
        )
        assert response.status_code == 303, response.text[:2000]
    (stored,) = services.records.list_records(SYSTEM, PATIENT_ID, KINDS["prior_treatment"])
    assert (stored.version, stored.data.loading_completed) == (2, True)
    refused = clinician.post(url, data={"since": "2025-06-01", "loading_completed": "maybe"})
    assert refused.status_code == 422


def bearer(client: TestClient, credentials: tuple[str, str]) -> dict[str, str]:
    username, password = credentials
    token = client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def reporters(services: Services) -> list[tuple[str, str, str]]:
    rows = services.records.list_records(SYSTEM, PATIENT_ID, KINDS["symptoms"])
    return sorted(
        (r.data.code, r.data.status, r.data.reporter or "") for r in rows if r.data.date == TODAY
    )


def test_a_patients_resolved_diary_reaches_the_core_as_the_patient_and_loading_goes_on(
    patient: TestClient, services: Services
) -> None:
    # numbness is not on the diary: the patient reports it through the patient's API
    api = patient.post(
        f"/api/v1/patients/{PATIENT_ID}/symptoms",
        headers=bearer(patient, PATIENT),
        json={"code": "numbness", "date": DAY, "status": "resolved", "reporter": "clinician"},
    )
    assert api.status_code == 201, api.text
    diary = patient.post("/me/diary", data={"date": DAY, "tingling": "0"})
    assert "your diary is saved" in diary.text
    assert reporters(services) == [
        ("numbness", "resolved", "patient"),
        ("paraesthesia", "resolved", "patient"),
    ]
    assessment = neuro_phase(services)
    assert assessment.phase == "loading"
    assert assessment.regimen is not None and not assessment.regimen.loading.complete
    assert "NEURO_REVIEW_DUE" in assessment.codes()
    home = patient.get("/me").text
    assert not FINISHED.search(home)


def test_the_same_statuses_from_a_clinician_do_end_loading(
    clinician: TestClient, services: Services
) -> None:
    """The control for the test above: the reporter is what keeps loading going."""
    for code in ("numbness", "paraesthesia"):
        response = clinician.post(
            f"/clinic/patients/{PATIENT_ID}/symptom",
            data={"date": DAY, "code": code, "status": "resolved"},
            follow_redirects=False,
        )
        assert response.status_code == 303
    assessment = neuro_phase(services)
    assert assessment.regimen is not None and assessment.regimen.loading.complete


def test_a_diary_that_fails_saves_nothing(patient: TestClient, services: Services) -> None:
    response = patient.post(
        "/me/diary", data={"date": "2030-01-01", "fatigue": "5", "tingling": "3"}
    )
    assert response.status_code == 422
    assert "in the future" in field_error(response.text, "diary-date")
    assert not [
        r
        for r in services.records.list_records(SYSTEM, PATIENT_ID, KINDS["symptoms"])
        if r.data.date.year == 2030
    ]
