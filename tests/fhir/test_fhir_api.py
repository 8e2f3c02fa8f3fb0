"""The FHIR routes over an in-memory store given as two callables."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from b12plan.contract import case_to_dict, parse_case
from b12plan.core.model import Case
from b12plan.fhir.api import make_router
from b12plan.knowledge import load_knowledge
from tests.fhir.support import bundle_of, read_back

CASE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "cases" / "every-field-gb.json").read_text(encoding="utf-8")
)
TODAY = date(2026, 6, 1)
K = load_knowledge()


class Store:
    """Enough of a store for the routes: cases by id, imports appended (as the store takes
    them, ``Case`` objects)."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {"p-1": parse_case(CASE, K)}
        self.imported: list[Case] = []

    def load(self, patient_id: str) -> Case | None:
        return self.cases.get(patient_id)

    def add(self, case: Case) -> str:
        self.imported.append(case)
        new_id = f"p-{len(self.cases) + 1}"
        self.cases[new_id] = case
        return new_id


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def client(store: Store) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(store.load, store.add, clock=lambda: TODAY, knowledge=K))
    return TestClient(app)


def test_everything_returns_the_record_as_a_searchset(client: TestClient) -> None:
    response = client.get("/fhir/Patient/p-1/$everything")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    assert bundle["type"] == "searchset"
    patient = bundle["entry"][0]["resource"]
    assert (patient["resourceType"], patient["id"]) == ("Patient", "p-1")
    assert {e["search"]["mode"] for e in bundle["entry"]} == {"match"}
    assert read_back(bundle, as_of=date(2026, 6, 1), knowledge=K) == CASE


def test_everything_for_an_unknown_patient_is_404_with_an_outcome(client: TestClient) -> None:
    response = client.get("/fhir/Patient/nobody/$everything")
    assert response.status_code == 404
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"


def test_posting_a_bundle_creates_a_patient(client: TestClient, store: Store) -> None:
    bundle = bundle_of(CASE, knowledge=K)
    bundle["type"] = "transaction"
    for entry in bundle["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "Patient/p-2"
    assert response.json() == {
        "resourceType": "Patient",
        "id": "p-2",
        "gender": "female",
        "birthDate": "1958-04-02",
    }
    (imported,) = store.imported
    assert case_to_dict(imported) == {**CASE, "as_of": TODAY.isoformat()}


def _first(bundle: dict[str, Any], kind: str) -> int:
    return next(n for n, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == kind)


def test_a_dose_in_an_unknown_unit_is_422_naming_the_path(client: TestClient, store: Store) -> None:
    """A B12 dose that cannot be read changes the schedule: the record is refused whole."""
    bundle = bundle_of(CASE, knowledge=K)
    i = _first(bundle, "MedicationAdministration")
    bundle["entry"][i]["resource"]["dosage"]["dose"] = {"value": 1, "unit": "ampoule"}
    response = client.post("/fhir", json=bundle)
    assert response.status_code == 422
    issue = response.json()["issue"][0]
    assert issue["expression"] == [f"Bundle.entry[{i}].resource.dosage.dose.unit"]
    assert store.imported == []


def test_a_result_in_an_unknown_unit_is_left_out_and_reported(
    client: TestClient, store: Store
) -> None:
    bundle = bundle_of(CASE, knowledge=K)
    i = _first(bundle, "Observation")
    bundle["entry"][i]["resource"]["valueQuantity"] = {"value": 98, "unit": "pmol"}
    response = client.post("/fhir", json=bundle, headers={"Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    assert response.headers["location"] == "Patient/p-2"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    created, *warnings = outcome["issue"]
    assert (created["severity"], created["diagnostics"]) == ("information", "created Patient/p-2")
    skipped = [w for w in warnings if w.get("expression")]
    assert [w["expression"] for w in skipped] == [
        [f"Bundle.entry[{i}].resource.valueQuantity.unit"]
    ]
    assert skipped[0]["severity"] == "warning"
    assert "unknown unit 'pmol'" in skipped[0]["diagnostics"]
    (imported,) = store.imported
    assert len(imported.observations) == len(CASE["observations"]) - 1


def test_without_prefer_the_answer_is_the_new_patient(client: TestClient) -> None:
    response = client.post("/fhir", json=bundle_of(CASE, knowledge=K))
    assert response.status_code == 201
    assert response.json()["resourceType"] == "Patient"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"resourceType": "Patient"}', 400),
        (b'{"resourceType": "Bundle", "type": "searchset"}', 422),
        (
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
            b'{"resourceType": "Observation", "status": "final"}}]}',
            400,
        ),
    ],
    ids=["invalid-json", "not-a-bundle", "searchset", "missing-code"],
)
def test_bad_posts_are_refused_with_an_operation_outcome(
    client: TestClient, store: Store, body: bytes, status: int
) -> None:
    response = client.post("/fhir", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"
    assert store.imported == []


def test_dependencies_given_by_the_composition_root_guard_every_route(store: Store) -> None:
    def require_token(request: Request) -> None:
        if request.headers.get("authorization") != "Bearer ok":
            raise HTTPException(401)

    app = FastAPI()
    app.include_router(
        make_router(
            store.load,
            store.add,
            clock=lambda: TODAY,
            knowledge=K,
            dependencies=[Depends(require_token)],
        )
    )
    client = TestClient(app)
    assert client.get("/fhir/Patient/p-1/$everything").status_code == 401
    assert client.post("/fhir", json={}).status_code == 401
    ok = client.get("/fhir/Patient/p-1/$everything", headers={"authorization": "Bearer ok"})
    assert ok.status_code == 200


def test_the_signed_in_user_reaches_the_store_when_a_principal_is_given() -> None:
    """So the store applies its own access rules (clinic scope) to FHIR reads and imports."""
    seen: list[tuple[str, str]] = []

    def current_user(request: Request) -> str:
        return request.headers.get("x-user", "anonymous")

    def load(patient_id: str, who: str) -> Case | None:
        seen.append(("load", who))
        return parse_case(CASE, K) if who == "dr-a" else None

    def add(case: Case, who: str) -> str:
        seen.append(("import", who))
        return "p-9"

    app = FastAPI()
    app.include_router(
        make_router(load, add, clock=lambda: TODAY, knowledge=K, principal=current_user)
    )
    client = TestClient(app)
    assert client.get("/fhir/Patient/p-1/$everything", headers={"x-user": "dr-a"}).is_success
    assert (
        client.get("/fhir/Patient/p-1/$everything", headers={"x-user": "dr-b"}).status_code == 404
    )
    created = client.post("/fhir", json=bundle_of(CASE, knowledge=K), headers={"x-user": "dr-a"})
    assert created.status_code == 201
    assert seen == [("load", "dr-a"), ("load", "dr-b"), ("import", "dr-a")]
