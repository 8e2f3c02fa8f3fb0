"""patient-view: the record from prefetch, from the EHR's FHIR server, or from b12plan's store."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from b12plan.cds_hooks import load_services
from b12plan.cds_hooks.api import make_router
from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.model import Case
from b12plan.knowledge import load_knowledge
from tests.cds_hooks.conftest import Hooks, codes, counting_ids
from tests.cds_hooks.ehr import (
    SERVER,
    TOKEN,
    FhirServer,
    hook_request,
    prefetch_for,
    scenario_case,
)

K = load_knowledge()
SERVICE = "b12plan-patient-view"
PID = "ehr-42"
AUTH = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "b12plan",
}


def _as_of(case: dict[str, Any]) -> date:
    return date.fromisoformat(case["as_of"])


def _expected(case: dict[str, Any]) -> list[str]:
    """Core's warning and critical findings, in its order."""
    assessment = evaluate(parse_case(case, K), K, as_of=_as_of(case))
    return [f.code for f in assessment.findings if f.severity != "info"]


@pytest.mark.parametrize(
    "name",
    [
        "gb-neuro-untreated",
        "gb-monthly-from-the-start",
        "adherence-gap",
        "cyanide-antidote-ordered",
        "folic-acid-without-b12",
        "dose-unit-suspect-1000-mg",
    ],
)
def test_one_card_per_warning_or_critical_finding(name: str) -> None:
    case = scenario_case(name)
    cards = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    shown = [c for c in cards if c["indicator"] != "info"]
    assert codes(shown) == _expected(case)
    assert _expected(case), "the scenario should have something to show"


def test_a_course_under_way_ends_with_the_next_dose() -> None:
    case = scenario_case("gb-monthly-from-the-start")
    cards = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    assessment = evaluate(parse_case(case, K), K, as_of=_as_of(case))
    assert assessment.next_dose is not None
    last = cards[-1]
    assert (last["indicator"], "topic" in last["source"]) == ("info", False)
    assert f"due {assessment.next_dose.due.isoformat()}" in last["summary"]


def test_card_ids_are_the_injected_ones() -> None:
    case = scenario_case("gb-monthly-from-the-start")
    cards = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    assert [c["uuid"] for c in cards] == [
        f"00000000-0000-4000-8000-{n:012d}" for n in range(1, len(cards) + 1)
    ]


def test_informational_cards_are_capped_and_untreated_charts_stay_quiet() -> None:
    untreated = Hooks(date(2026, 3, 1)).cards(
        SERVICE,
        hook_request(
            "patient-view",
            PID,
            prefetch=prefetch_for({"schema_version": 1, "as_of": "2026-03-01"}, PID),
        ),
    )
    assert untreated == [], "no B12 data: no 'insufficient data' card on every chart"
    spec = next(s for s in load_services() if s.id == SERVICE)
    for name in ("gb-maintenance-appropriate", "post-injection-sample", "cause-unknown"):
        case = scenario_case(name)
        cards = Hooks(_as_of(case)).cards(
            SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
        )
        info_findings = [c for c in cards if c["indicator"] == "info" and "topic" in c["source"]]
        assert len(info_findings) <= spec.info_cards_max


def test_without_prefetch_the_store_record_gives_the_same_cards() -> None:
    case = scenario_case("adherence-gap")
    with_prefetch = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    hooks = Hooks(_as_of(case), cases={PID: case})
    from_store = hooks.cards(SERVICE, hook_request("patient-view", PID))
    assert from_store == with_prefetch
    assert hooks.looked_up == [PID]


def test_with_a_fhir_server_the_missing_prefetch_is_queried_with_the_token() -> None:
    case = scenario_case("adherence-gap")
    expected = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    server = FhirServer(case, PID, page_size=2)
    partial = {"patient": prefetch_for(case, PID)["patient"]}
    hooks = Hooks(_as_of(case), cases={PID: case}, fhir_client_factory=server.client_factory())
    cards = hooks.cards(
        SERVICE,
        hook_request(
            "patient-view", PID, prefetch=partial, fhirServer=SERVER, fhirAuthorization=AUTH
        ),
    )
    assert cards == expected
    assert hooks.looked_up == [], "the FHIR server wins over b12plan's own ids"
    paths = [r.url.path for r in server.requests]
    assert "/fhir/Patient/ehr-42" not in paths, "prefetched keys are not fetched again"
    assert paths.count("/fhir/MedicationAdministration") > 1, "next pages were followed"


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("server-error", "answered 500"),
        ("next-link-elsewhere", "leaves the FHIR server"),
        ("not-allowed", "not one this service may query"),
    ],
)
def test_when_the_fhir_server_cannot_give_the_record_the_answer_is_412(
    setup: str, fragment: str
) -> None:
    case = scenario_case("adherence-gap")
    server = FhirServer(case, PID, page_size=2)
    allowed = None
    if setup == "server-error":
        server.fail_with = 500
    elif setup == "next-link-elsewhere":
        server.next_link_base = "https://elsewhere.example/fhir"
    else:
        allowed = ["https://other-ehr.example/fhir/"]
    hooks = Hooks(_as_of(case), fhir_client_factory=server.client_factory(), fhir_servers=allowed)
    response = hooks.call(
        SERVICE, hook_request("patient-view", PID, fhirServer=SERVER, fhirAuthorization=AUTH)
    )
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert fragment in issue["diagnostics"]


def test_no_prefetch_no_server_and_no_record_is_412() -> None:
    hooks = Hooks(date(2026, 3, 1))
    response = hooks.call(SERVICE, hook_request("patient-view", "unknown-patient"))
    assert response.status_code == 412
    assert response.json()["resourceType"] == "OperationOutcome"
    assert hooks.looked_up == ["unknown-patient"]


def test_an_unreadable_record_is_a_card_naming_the_problem() -> None:
    case = scenario_case("adherence-gap")
    prefetch = prefetch_for(case, PID)
    prefetch["observations"]["entry"][0]["resource"]["valueQuantity"]["unit"] = "pmol"
    prefetch["observations"]["entry"][0]["resource"]["valueQuantity"].pop("code")
    (card,) = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch)
    )
    assert card["indicator"] == "warning"
    assert "could not check this patient's record" in card["summary"]
    assert (
        "prefetch.observations.entry[0].resource.valueQuantity.unit: unknown unit 'pmol'"
        in card["detail"]
    )


def test_records_of_another_patient_are_refused_not_shown() -> None:
    case = scenario_case("adherence-gap")
    prefetch = prefetch_for(case, "someone-else")
    (card,) = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch)
    )
    assert "is not the patient asked about" in card["detail"]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: b.pop("hookInstance"), "hookInstance"),
        (lambda b: b.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda b: b.update(hook="order-sign"), "hook"),
        (lambda b: b["context"].pop("patientId"), "context.patientId"),
        (lambda b: b.update(context="patient"), "context"),
        (lambda b: b.update(fhirAuthorization=AUTH), "fhirAuthorization"),
        (lambda b: b.update(fhirServer="ftp://ehr"), "fhirServer"),
        (lambda b: b.update(prefetch={"patient": "Patient/1"}), "prefetch.patient"),
    ],
    ids=[
        "no-instance",
        "instance-not-uuid",
        "wrong-hook",
        "no-patient",
        "context-not-object",
        "token-without-server",
        "server-not-http",
        "prefetch-not-resource",
    ],
)
def test_malformed_calls_are_400_with_the_reason(change: Any, loc: str) -> None:
    body = hook_request("patient-view", PID)
    change(body)
    response = Hooks(date(2026, 3, 1)).call(SERVICE, body)
    assert response.status_code == 400
    issues = response.json()["issue"]
    assert loc in [i["expression"][0] for i in issues]


def test_invalid_json_and_unknown_services() -> None:
    hooks = Hooks(date(2026, 3, 1))
    bad = hooks.client.post(
        f"/cds-services/{SERVICE}", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    unknown = hooks.call("b12plan-nothing", hook_request("patient-view", PID))
    assert unknown.status_code == 404


def test_the_same_call_gives_the_same_answer() -> None:
    case = scenario_case("gb-neuro-untreated")
    body = hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    assert Hooks(_as_of(case)).cards(SERVICE, copy.deepcopy(body)) == Hooks(_as_of(case)).cards(
        SERVICE, body
    )


def test_the_caller_reaches_the_store_when_a_principal_is_given() -> None:
    case = scenario_case("adherence-gap")
    seen: list[tuple[str, str]] = []

    def caller(request: Request) -> str:
        return request.headers.get("x-client", "?")

    def load(patient_id: str, who: str) -> Case | None:
        seen.append((patient_id, who))
        return parse_case(case, K)

    app = FastAPI()
    app.include_router(
        make_router(
            load,
            knowledge=K,
            clock=lambda: _as_of(case),
            id_factory=counting_ids(),
            principal=caller,
        )
    )
    response = TestClient(app).post(
        f"/cds-services/{SERVICE}",
        json=hook_request("patient-view", PID),
        headers={"x-client": "ehr-1"},
    )
    assert response.status_code == 200
    assert seen == [(PID, "ehr-1")]


def test_an_overdue_next_dose_says_so() -> None:
    case = scenario_case("maintenance-overdue")
    cards = Hooks(_as_of(case)).cards(
        SERVICE, hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    assessment = evaluate(parse_case(case, K), K, as_of=_as_of(case))
    assert assessment.next_dose is not None and assessment.next_dose.overdue_after < _as_of(case)
    assert "INJECTION_OVERDUE" in codes(cards)
    assert cards[-1]["summary"].endswith(
        f"overdue since {assessment.next_dose.overdue_after.isoformat()}"
        f" (was due {assessment.next_dose.due.isoformat()})"
    )


def test_a_bad_record_from_the_fhir_server_names_the_query_it_came_from() -> None:
    case = scenario_case("adherence-gap")
    server = FhirServer(case, PID)
    lab = next(
        r for r in server.resources if r["resourceType"] == "Observation" and "valueQuantity" in r
    )
    lab["valueQuantity"] = {"value": 98, "unit": "pmol"}
    hooks = Hooks(_as_of(case), fhir_client_factory=server.client_factory())
    (card,) = hooks.cards(
        SERVICE, hook_request("patient-view", PID, fhirServer=SERVER, fhirAuthorization=AUTH)
    )
    assert f"{SERVER}/Observation?patient={PID}&code=http://loinc.org|" in card["detail"]
    assert "].resource.valueQuantity.unit: unknown unit 'pmol'" in card["detail"]
