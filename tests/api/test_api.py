"""The REST API over a seeded store: sign-in, records, versions, roles, assessments, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from icalendar import Calendar

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.examples import example_cases
from tests.api.conftest import Api
from tests.store.support import TODAY

PROBLEM = "application/problem+json"
SAMPLES: dict[str, dict[str, Any]] = {
    "causes": {"code": "dietary"},
    "symptoms": {"code": "fatigue", "date": "2026-05-20", "status": "improving"},
    "observations": {"code": "mcv", "date": "2026-05-20", "value": 96, "unit": "fL"},
    "administrations": {
        "date": "2026-05-20",
        "product": "hydroxocobalamin",
        "dose": 1,
        "unit": "mg",
        "route": "IM",
        "given_by": "clinic",
        "site": "left deltoid",
        "lot": "B-1234",
    },
    "prescriptions": {
        "product": "hydroxocobalamin",
        "dose": 1,
        "unit": "mg",
        "route": "IM",
        "phase": "maintenance",
        "interval_days": 56,
        "start": "2026-05-20",
    },
    "medications": {"code": "ppi", "start": "2025-01-01"},
    "adverse-events": {"code": "headache", "date": "2026-05-20"},
    "decisions": {
        "code": "neuro_loading_complete",
        "date": "2026-05-20",
        "reason": "No further improvement at the last two reviews.",
    },
    "prior-treatment": {"since": "2024-02-01", "loading_completed": True},
}


def assert_problem(response: Any, status: int, loc: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["status"] == status
    if loc is not None:
        assert loc in [e["loc"] for e in body["errors"]], body
    return body


# --- sign-in ----------------------------------------------------------------------------------


def test_a_token_signs_in_and_a_wrong_password_is_a_401_problem(api: Api) -> None:
    headers = api.clinician()
    me = api.client.get("/api/v1/auth/me", headers=headers).json()
    assert (me["username"], me["role"], me["clinic_id"]) == ("dr.demo", "clinician", "demo-clinic")
    wrong = api.client.post("/api/v1/auth/token", data={"username": "dr.demo", "password": "guess"})
    assert_problem(wrong, 401)
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert_problem(api.client.get("/api/v1/patients"), 401)
    assert_problem(
        api.client.get("/api/v1/patients", headers={"Authorization": "Bearer forged"}), 401
    )


def test_a_cookie_session_works_for_the_web_ui_and_ends_on_logout(api: Api) -> None:
    browser = api.browser()
    response = browser.post(
        "/api/v1/auth/session", data={"username": "pat.demo", "password": "demo-patient"}
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("__host-b12plan_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert "access_token" not in response.json()
    assert browser.get("/api/v1/patients/demo-01").status_code == 200  # cookie only
    assert browser.post("/api/v1/auth/logout").status_code == 204
    session = browser.cookies.get("__Host-b12plan_session")
    assert not session
    assert_problem(browser.get("/api/v1/patients/demo-01"), 401)


# --- records ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_each_kind_of_record_is_created_read_corrected_and_retracted(api: Api, kind: str) -> None:
    headers = api.clinician()
    base = f"/api/v1/patients/demo-02/{kind}"
    created = api.client.post(base, headers=headers, json=SAMPLES[kind])
    assert created.status_code == 201, created.text
    record = created.json()
    assert created.headers["location"] == f"{base}/{record['id']}"
    assert created.headers["etag"] == '"1"'
    assert {k: record["data"][k] for k in SAMPLES[kind]} == SAMPLES[kind]

    read = api.client.get(f"{base}/{record['id']}", headers=headers)
    assert (read.status_code, read.headers["etag"]) == (200, '"1"')
    changed = {**SAMPLES[kind], "note": "checked against the paper record"}
    corrected = api.client.put(
        f"{base}/{record['id']}", headers={**headers, "If-Match": '"1"'}, json=changed
    )
    assert (corrected.status_code, corrected.headers["etag"]) == (200, '"2"'), corrected.text
    retracted = api.client.delete(
        f"{base}/{record['id']}",
        headers={**headers, "If-Match": '"2"'},
        params={"reason": "entered on the wrong patient"},
    )
    assert retracted.json()["status"] == "entered-in-error"
    assert record["id"] not in [r["id"] for r in api.client.get(base, headers=headers).json()]
    history = api.client.get(f"{base}/{record['id']}/history", headers=headers).json()
    assert [(h["version"], h["status"]) for h in history] == [
        (1, "entered-in-error"),
        (2, "entered-in-error"),
    ]
    audit = api.client.get("/api/v1/patients/demo-02/audit", headers=headers).json()["items"]
    assert [a["action"] for a in audit[:3]] == ["retract", "correct", "create"]


def test_two_clinicians_editing_one_version_get_one_success_and_one_409(api: Api) -> None:
    first, second = api.clinician(), api.clinician()
    base = "/api/v1/patients/demo-03/observations"
    record = api.client.post(base, headers=first, json=SAMPLES["observations"]).json()
    url = f"{base}/{record['id']}"
    etag = api.client.get(url, headers=second).headers["etag"]
    mine = {**SAMPLES["observations"], "value": 97}
    theirs = {**SAMPLES["observations"], "value": 99}
    assert api.client.put(url, headers={**first, "If-Match": etag}, json=mine).status_code == 200
    conflict = api.client.put(url, headers={**second, "If-Match": etag}, json=theirs)
    body = assert_problem(conflict, 409)
    assert body["current_version"] == 2
    assert api.client.get(url, headers=second).json()["data"]["value"] == 97
    assert_problem(api.client.put(url, headers=second, json=theirs), 428)
    assert_problem(
        api.client.put(url, headers={**second, "If-Match": "latest"}, json=theirs),
        422,
        "header.If-Match",
    )


def test_invalid_records_are_422_problems_naming_the_field(api: Api) -> None:
    headers = api.clinician()
    base = "/api/v1/patients/demo-02/observations"
    cases = [
        ({**SAMPLES["observations"], "unit": "pmol"}, "unit"),
        ({**SAMPLES["observations"], "value": "96"}, "value"),
        ({**SAMPLES["observations"], "date": "20/05/2026"}, "date"),
        ({**SAMPLES["observations"], "colour": "red"}, "colour"),
        ({**SAMPLES["observations"], "date": "2030-01-01"}, "date"),
    ]
    before = api.client.get("/api/v1/patients/demo-02/audit", headers=headers).json()["total"]
    for body, loc in cases:
        assert_problem(api.client.post(base, headers=headers, json=body), 422, loc)
    assert_problem(
        api.client.post(
            base,
            headers=headers,
            content=b"{not json",
            params={},
        ),
        422,
    )
    after = api.client.get("/api/v1/patients/demo-02/audit", headers=headers).json()["total"]
    assert after == before


def test_a_bad_field_reads_the_same_whether_the_body_or_the_case_check_finds_it(
    api: Api,
) -> None:
    """Shape is checked while the body is read, meaning (vocabulary) when the whole record is
    checked before the write commits: either way the problem names the body's field, in the
    contract's words, and nothing is stored."""
    headers = api.clinician()
    base = "/api/v1/patients/demo-02/administrations"
    given = {"date": "2026-05-20", "product": "hydroxocobalamin", "dose": 1, "unit": "mg"}
    cases = [
        ({**given, "route": "IM", "dose": -1}, "dose", "greater_than", "must be greater than 0"),
        ({**given, "route": "IM", "dose": "1"}, "dose", "float_type", "expected a number"),
        ({**given, "route": "I\x00M"}, "route", "nul_character", "must not contain NUL"),
        ({**given, "route": "IV push"}, "route", "unknown_routes", "unknown route 'IV push'"),
    ]
    before = api.client.get("/api/v1/patients/demo-02/audit", headers=headers).json()["total"]
    for body, loc, type_, message in cases:
        problem = assert_problem(api.client.post(base, headers=headers, json=body), 422, loc)
        (error,) = problem["errors"]
        assert (error["type"], error["msg"][: len(message)]) == (type_, message)
    after = api.client.get("/api/v1/patients/demo-02/audit", headers=headers).json()["total"]
    assert after == before


# --- roles ------------------------------------------------------------------------------------


def test_a_patient_cannot_read_or_write_another_patients_record(api: Api) -> None:
    me, admin = api.patient(), api.admin()
    trail = api.client.get("/api/v1/patients/demo-02/audit", headers=admin).json()["total"]
    assert api.client.get("/api/v1/patients/demo-01", headers=me).status_code == 200
    for path in ("", "/assessment", "/case", "/schedule.ics", "/observations", "/audit"):
        assert_problem(api.client.get(f"/api/v1/patients/demo-02{path}", headers=me), 404)
    for kind in ("symptoms", "adverse-events", "administrations"):
        body = {**SAMPLES[kind], "given_by": "self"} if kind == "administrations" else SAMPLES[kind]
        response = api.client.post(f"/api/v1/patients/demo-02/{kind}", headers=me, json=body)
        assert_problem(response, 404)
    listed = api.client.get("/api/v1/patients", headers=me).json()
    assert [p["id"] for p in listed["items"]] == ["demo-01"]
    assert_problem(api.client.get("/api/v1/worklist", headers=me), 403)
    after = api.client.get("/api/v1/patients/demo-02/audit", headers=admin).json()["total"]
    assert after == trail


def test_a_patient_logs_doses_and_symptoms_but_cannot_edit_prescriptions(api: Api) -> None:
    me, clinic = api.patient(), api.clinician()
    base = "/api/v1/patients/demo-01"
    dose = {**SAMPLES["administrations"], "given_by": "self"}
    assert api.client.post(f"{base}/administrations", headers=me, json=dose).status_code == 201
    assert (
        api.client.post(f"{base}/symptoms", headers=me, json=SAMPLES["symptoms"]).status_code == 201
    )
    by_clinic = {**SAMPLES["administrations"], "given_by": "clinic"}
    assert_problem(api.client.post(f"{base}/administrations", headers=me, json=by_clinic), 403)
    assert_problem(
        api.client.post(f"{base}/prescriptions", headers=me, json=SAMPLES["prescriptions"]), 403
    )
    (order,) = api.client.get(f"{base}/prescriptions", headers=me).json()
    url = f"{base}/prescriptions/{order['id']}"
    stop = {**order["data"], "end": "2026-05-01"}
    assert_problem(api.client.put(url, headers={**me, "If-Match": '"1"'}, json=stop), 403)
    assert_problem(api.client.delete(url, headers={**me, "If-Match": '"1"'}), 403)
    assert api.client.get(url, headers=clinic).json()["version"] == 1


def test_a_clinician_of_another_clinic_sees_nothing_of_this_one(api: Api) -> None:
    other = api.riverside()
    assert_problem(api.client.get("/api/v1/patients/demo-01/assessment", headers=other), 404)
    assert_problem(api.client.get("/api/v1/worklist?clinic=demo-clinic", headers=other), 403)
    ids = [p["id"] for p in api.client.get("/api/v1/patients", headers=other).json()["items"]]
    assert ids == ["demo-05"]


# --- assessments ------------------------------------------------------------------------------


def test_the_stored_assessment_is_the_core_evaluation_of_the_stored_case(api: Api) -> None:
    headers = api.clinician()
    case = api.client.get("/api/v1/patients/demo-03/case", headers=headers).json()
    assert case["as_of"] == TODAY.isoformat()  # the injected clock's today
    knowledge = api.services.knowledge
    expected = evaluate(parse_case(case, knowledge), knowledge, as_of=TODAY).to_dict()
    got = api.client.get("/api/v1/patients/demo-03/assessment", headers=headers).json()
    assert got == expected
    earlier = api.client.get(
        "/api/v1/patients/demo-03/assessment", headers=headers, params={"as_of": "2026-01-01"}
    ).json()
    assert earlier["as_of"] == "2026-01-01"
    assert_problem(
        api.client.get(
            "/api/v1/patients/demo-03/assessment", headers=headers, params={"as_of": "2026-02-30"}
        ),
        422,
        "query.as_of",
    )


def test_an_entered_in_error_reaction_leaves_the_assessment(api: Api) -> None:
    headers = api.clinician()
    base = "/api/v1/patients/demo-04"

    def codes() -> set[str]:
        got = api.client.get(f"{base}/assessment", headers=headers).json()
        return {f["code"] for f in got["findings"]}

    reaction = api.client.post(
        f"{base}/adverse-events",
        headers=headers,
        json={"code": "anaphylaxis", "date": "2026-05-30"},
    ).json()
    assert "ALLERGIC_REACTION" in codes()
    api.client.delete(
        f"{base}/adverse-events/{reaction['id']}", headers={**headers, "If-Match": '"1"'}
    )
    assert "ALLERGIC_REACTION" not in codes()


def test_stateless_assessment_matches_core_and_names_bad_fields(api: Api) -> None:
    headers = api.clinician()
    knowledge = api.services.knowledge
    for example in example_cases():
        document = json.loads(example.text)
        response = api.client.post("/api/v1/assess", headers=headers, content=example.text)
        case = parse_case(document, knowledge)
        assert response.json() == evaluate(case, knowledge, as_of=case.as_of).to_dict()
    bad = json.loads(example_cases()[0].text)
    bad["observations"][0]["unit"] = "pmol"
    assert_problem(
        api.client.post("/api/v1/assess", headers=headers, json=bad), 422, "observations[0].unit"
    )
    assert_problem(api.client.post("/api/v1/assess", headers=headers, content=b"[1, 2"), 422, "")
    duplicate = b'{"schema_version": 1, "as_of": "2026-01-01", "as_of": "2026-01-02"}'
    assert_problem(api.client.post("/api/v1/assess", headers=headers, content=duplicate), 422)
    assert_problem(api.client.post("/api/v1/assess", content=example_cases()[0].text), 401)


def test_the_worklist_filters_pages_and_sorts(api: Api) -> None:
    headers = api.clinician()
    everyone = api.client.get("/api/v1/worklist", headers=headers).json()
    assert everyone["total"] == len(everyone["items"]) > 0
    assert "demo-05" not in [r["patient_id"] for r in everyone["items"]]  # another clinic
    overdue = api.client.get(
        "/api/v1/worklist", headers=headers, params={"code": "INJECTION_OVERDUE"}
    ).json()
    assert overdue["items"]
    assert all("INJECTION_OVERDUE" in {f["code"] for f in r["findings"]} for r in overdue["items"])
    page = api.client.get(
        "/api/v1/worklist", headers=headers, params={"limit": 1, "offset": 1, "sort": "name"}
    ).json()
    by_name = sorted(everyone["items"], key=lambda r: (r["display_name"], r["patient_id"]))
    assert [r["patient_id"] for r in page["items"]] == [by_name[1]["patient_id"]]
    assert_problem(api.client.get("/api/v1/worklist?limit=0", headers=headers), 422, "query.limit")


def test_the_calendar_lists_planned_doses_and_monitoring(api: Api) -> None:
    headers = api.clinician()
    response = api.client.get("/api/v1/patients/demo-01/schedule.ics", headers=headers)
    assert response.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(response.content).walk("VEVENT")
    assessment = api.client.get("/api/v1/patients/demo-01/assessment", headers=headers).json()
    assert len(events) == len(assessment["schedule"]) + len(assessment["monitoring"])
    assert len(assessment["schedule"]) >= 6


def test_unknown_routes_and_methods_are_problems_too(api: Api) -> None:
    assert_problem(api.client.get("/api/v1/no-such-thing"), 404)
    assert_problem(api.client.patch("/api/v1/worklist", headers=api.clinician()), 405)


def test_the_api_runs_on_postgresql_too(pg_api: Api) -> None:
    first, second = pg_api.clinician(), pg_api.clinician()
    base = "/api/v1/patients/demo-02/symptoms"
    record = pg_api.client.post(base, headers=first, json=SAMPLES["symptoms"]).json()
    url = f"{base}/{record['id']}"
    changed = {**SAMPLES["symptoms"], "status": "resolved"}
    assert (
        pg_api.client.put(url, headers={**first, "If-Match": '"1"'}, json=changed).status_code
        == 200
    )
    assert_problem(pg_api.client.put(url, headers={**second, "If-Match": '"1"'}, json=changed), 409)
    got = pg_api.client.get("/api/v1/patients/demo-02/assessment", headers=second)
    assert got.status_code == 200 and got.json()["as_of"] == TODAY.isoformat()


def test_the_openapi_document_describes_every_route_and_its_problems(api: Api) -> None:
    # Swagger UI loads from a CDN, which the CSP forbids: /docs only in dev mode (--dev).
    assert api.client.get("/docs").status_code == 404
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for kind in SAMPLES:
        assert f"/api/v1/patients/{{patient_id}}/{kind}/{{record_id}}" in paths
    put = paths["/api/v1/patients/{patient_id}/observations/{record_id}"]["put"]
    assert {"409", "422", "428"} <= set(put["responses"])
    assert "application/problem+json" in put["responses"]["409"]["content"]
    schemes = spec["components"]["securitySchemes"]
    assert {"bearer", "session-cookie"} <= set(schemes)


def test_an_oversized_case_is_refused_before_parsing(api: Api) -> None:
    big = b'{"schema_version": 1, "as_of": "2026-01-01", "x": "' + b"a" * 1_000_001 + b'"}'
    assert_problem(api.client.post("/api/v1/assess", headers=api.clinician(), content=big), 413)
