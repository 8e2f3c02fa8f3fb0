"""A pretend EHR for the CDS Hooks tests: prefetch built from a case, and an in-process FHIR
server (``httpx.MockTransport``) answering the prefetch queries. No network."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from b12plan.knowledge import load_knowledge
from tests.fhir.support import bundle_of

Json = dict[str, Any]
K = load_knowledge()
SERVER = "https://ehr.example/fhir"
TOKEN = "token-for-b12plan"
SCENARIOS = Path(__file__).parent.parent / "scenarios"

KEY_OF = {
    "Condition": "conditions",
    "MedicationRequest": "medicationRequests",
    "MedicationAdministration": "medicationAdministrations",
    "MedicationStatement": "medicationStatements",
    "AdverseEvent": "adverseEvents",
}


def scenario_case(name: str) -> Json:
    data: Json = json.loads((SCENARIOS / f"{name}.json").read_text(encoding="utf-8"))
    case: Json = data["case"]
    return case


def ehr_resources(case: Json, patient_id: str) -> list[Json]:
    """The case as an EHR holds it: resource ids, ``Patient/<id>`` references, no CarePlan."""
    bundle = bundle_of(case, include_plan=False, patient_resource_id=patient_id, knowledge=K)
    patient_url = bundle["entry"][0]["fullUrl"]
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    resources: list[Json] = json.loads(text.replace(patient_url, f"Patient/{patient_id}"))
    for n, r in enumerate(resources[1:], start=1):
        r["id"] = f"{r['resourceType'].lower()}-{n}"
    return resources


def _key(resource: Json) -> str:
    if resource["resourceType"] == "Observation":
        return "symptoms" if "valueCodeableConcept" in resource else "observations"
    return KEY_OF[resource["resourceType"]]


def searchset(resources: list[Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": f"{SERVER}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


def prefetch_for(case: Json, patient_id: str) -> Json:
    """Every prefetch key b12plan asks for, filled from ``case``."""
    resources = ehr_resources(case, patient_id)
    out: Json = {"patient": resources[0]}
    for key in (
        "conditions",
        "observations",
        "symptoms",
        "medicationRequests",
        "medicationAdministrations",
        "medicationStatements",
        "adverseEvents",
    ):
        out[key] = searchset([r for r in resources[1:] if _key(r) == key])
    return out


class FhirServer:
    """Answers the prefetch queries for one patient; records what was asked."""

    def __init__(self, case: Json, patient_id: str, *, page_size: int | None = None) -> None:
        self.resources = ehr_resources(case, patient_id)
        self.patient_id = patient_id
        self.page_size = page_size
        self.requests: list[httpx.Request] = []
        self.fail_with: int | None = None
        self.next_link_base = SERVER

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401)
        if self.fail_with is not None:
            return httpx.Response(self.fail_with)
        url = urlsplit(str(request.url))
        path = url.path.removeprefix(urlsplit(SERVER).path).strip("/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == f"Patient/{self.patient_id}":
            return httpx.Response(200, json=self.resources[0])
        if "/" in path:
            return httpx.Response(404)
        found = [r for r in self.resources[1:] if r["resourceType"] == path]
        if path == "Observation":
            wanted = "symptoms" if query.get("category") == "survey" else "observations"
            found = [r for r in found if _key(r) == wanted]
        page = int(query.get("page", "0"))
        size = self.page_size or max(len(found), 1)
        body = searchset(found[page * size : (page + 1) * size])
        if (page + 1) * size < len(found):
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page")
            body["link"] = [
                {"relation": "next", "url": f"{self.next_link_base}/{path}?{rest}&page={page + 1}"}
            ]
        return httpx.Response(200, json=body)

    def client_factory(self) -> Callable[[str, str | None], httpx.Client]:
        def make(server: str, token: str | None) -> httpx.Client:
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            return httpx.Client(
                base_url=server, headers=headers, transport=httpx.MockTransport(self.handler)
            )

        return make


def hook_request(hook: str, patient_id: str, **extra: Any) -> Json:
    body: Json = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/dr-1", "patientId": patient_id},
    }
    if "draftOrders" in extra:
        body["context"]["draftOrders"] = extra.pop("draftOrders")
    body.update(copy.deepcopy(extra))
    return body


def draft_bundle(*orders: Json) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": o} for o in orders],
    }


def b12_draft(
    patient_id: str,
    *,
    dose: float,
    unit: str,
    route_snomed: str,
    every: int,
    period_unit: str,
    atc: str = "B03BA03",
    order_id: str = "draft-1",
) -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient_id}"},
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": atc}],
        },
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 1, "period": every, "periodUnit": period_unit}},
                "route": {"coding": [{"system": "http://snomed.info/sct", "code": route_snomed}]},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": dose,
                            "unit": unit,
                            "system": "http://unitsofmeasure.org",
                            "code": "ug" if unit == "mcg" else unit,
                        }
                    }
                ],
            }
        ],
    }
