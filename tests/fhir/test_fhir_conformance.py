"""Every Bundle b12plan writes is FHIR R4: the official JSON schema, FHIR's invariants, and
references that resolve inside the Bundle. Over every scenario, each as a ``collection`` export
and as ``$everything``."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from b12plan.contract import parse_case
from b12plan.fhir.api import make_router
from b12plan.fhir.invariants import bundle_problems, resource_problems, unresolved_references
from b12plan.knowledge import load_knowledge
from tests.fhir.support import bundle_of

HERE = Path(__file__).parent
SCENARIOS = sorted((HERE.parent / "scenarios").glob("*.json"))
FIXTURES = sorted((HERE / "cases").glob("*.json"))
EHR = sorted((HERE / "ehr").glob("*.json"))
Json = dict[str, Any]
K = load_knowledge()


@cache
def _schema() -> Json:
    data: Json = json.loads(gzip.decompress((HERE / "schema" / "fhir.schema.json.gz").read_bytes()))
    return data


@cache
def _validator(definition: str) -> Any:
    """A validator for one definition, so errors name the element, not the whole oneOf."""
    root = _schema()
    return jsonschema_rs.Draft6Validator(
        {
            "$schema": root["$schema"],
            "definitions": root["definitions"],
            "$ref": f"#/definitions/{definition}",
        }
    )


def schema_errors(bundle: Json) -> list[str]:
    """Errors of the Bundle against ``Bundle`` and of each resource against its definition."""
    errors = [f"Bundle: {e.message}" for e in _validator("Bundle").iter_errors(bundle)]
    for n, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        if kind not in _schema()["definitions"]:
            errors.append(f"entry[{n}]: no definition for {kind!r}")
            continue
        errors.extend(
            f"entry[{n}].resource ({kind}) {list(e.instance_path)}: {e.message}"
            for e in _validator(kind).iter_errors(resource)
        )
    return errors


def _case(path: Path) -> Json:
    data: Json = json.loads(path.read_text(encoding="utf-8"))
    case: Json = data.get("case", data)
    return case


def _everything(case: Json) -> Json:
    app = FastAPI()
    app.include_router(
        make_router(
            lambda _id: parse_case(case, K),
            lambda _c: "x",
            clock=lambda: date.fromisoformat(case["as_of"]),
            knowledge=K,
        )
    )
    response = TestClient(app).get("/fhir/Patient/pt-0042/$everything")
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


EXPORTS: list[tuple[str, Callable[[Json], Json]]] = [
    ("collection", lambda case: bundle_of(case, knowledge=K)),
    ("everything", _everything),
]
CASES = SCENARIOS + FIXTURES


def test_the_schema_is_the_official_r4_one() -> None:
    assert _schema()["id"] == "http://hl7.org/fhir/json-schema/4.0"
    assert {"Bundle", "Observation", "MedicationRequest", "CarePlan"} <= set(
        _schema()["definitions"]
    )


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
@pytest.mark.parametrize(("kind", "export"), EXPORTS, ids=[k for k, _ in EXPORTS])
def test_every_export_passes_the_fhir_r4_json_schema(
    path: Path, kind: str, export: Callable[[Json], Json]
) -> None:
    assert schema_errors(export(_case(path))) == []


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
@pytest.mark.parametrize(("kind", "export"), EXPORTS, ids=[k for k, _ in EXPORTS])
def test_every_export_keeps_fhir_s_invariants(
    path: Path, kind: str, export: Callable[[Json], Json]
) -> None:
    assert bundle_problems(export(_case(path))) == []


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
@pytest.mark.parametrize(("kind", "export"), EXPORTS, ids=[k for k, _ in EXPORTS])
def test_every_entry_has_an_id_and_a_full_url_and_every_reference_resolves(
    path: Path, kind: str, export: Callable[[Json], Json]
) -> None:
    """In a collection export the Patient alone has no id unless a server id is asked for: an
    import would read a made-up id as the patient's (ADR 0056)."""
    bundle = export(_case(path))
    for entry in bundle["entry"]:
        assert entry["fullUrl"].startswith("urn:uuid:")
        if kind == "everything" or entry["resource"]["resourceType"] != "Patient":
            assert entry["resource"]["id"]
    assert unresolved_references(bundle) == []


def test_everything_names_the_patient_by_the_server_s_id() -> None:
    bundle = _everything(_case(HERE / "cases" / "every-field-gb.json"))
    (patient,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    assert patient["id"] == "pt-0042"
    assert all(e["search"] == {"mode": "match"} for e in bundle["entry"])


@pytest.mark.parametrize("path", EHR, ids=[p.stem for p in EHR])
def test_the_ehr_fixtures_are_valid_fhir_r4(path: Path) -> None:
    """The test inputs are what a conformant EHR would send (else the tests prove little)."""
    bundle: Json = json.loads(path.read_text(encoding="utf-8"))
    assert schema_errors(bundle) == []
    assert bundle_problems(bundle) == []


# --- each check can fail -------------------------------------------------------------------


def _export() -> Json:
    return bundle_of(_case(HERE / "cases" / "every-field-gb.json"), knowledge=K)


def _first(bundle: Json, kind: str) -> Json:
    resource: Json = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind
    )
    return resource


def test_the_schema_check_catches_a_code_outside_its_value_set_and_an_unknown_element() -> None:
    bundle = _export()
    _first(bundle, "Observation")["status"] = "done"
    _first(bundle, "MedicationRequest")["dose"] = 1
    errors = schema_errors(bundle)
    assert any("Observation" in e and "done" in e for e in errors)
    assert any("MedicationRequest" in e and "dose" in e for e in errors)


BREAKS: list[tuple[str, Callable[[Json], None]]] = [
    ("bdl-1", lambda b: b.update(total=3)),
    ("bdl-2", lambda b: b["entry"][0].update(search={"mode": "match"})),
    ("bdl-3", lambda b: b["entry"][0].update(request={"method": "POST", "url": "Patient"})),
    ("bdl-4", lambda b: b["entry"][0].update(response={"status": "201"})),
    ("bdl-5", lambda b: b["entry"].append({"fullUrl": "urn:uuid:0"})),
    ("bdl-7", lambda b: b["entry"][1].update(fullUrl=b["entry"][0]["fullUrl"])),
    ("bdl-8", lambda b: b["entry"][0].update(fullUrl="https://x.example/Patient/1/_history/2")),
    ("bdl-9", lambda b: b.update(type="document")),
    ("ele-1", lambda b: _first(b, "Patient").update(gender="")),
    (
        "ext-1",
        lambda b: _first(b, "Patient")["extension"][0].update(
            extension=[{"url": "x", "valueCode": "y"}]
        ),
    ),
    ("ref-1", lambda b: _first(b, "Observation").update(subject={"reference": "#nowhere"})),
    ("qty-3", lambda b: _first(b, "Observation")["valueQuantity"].pop("system")),
    (
        "per-1",
        lambda b: _first(b, "MedicationStatement").update(
            effectivePeriod={"start": "2026-02-01", "end": "2026-01-01"}
        ),
    ),
    (
        "tim-2",
        lambda b: _first(b, "MedicationRequest")["dosageInstruction"][0]["timing"]["repeat"].pop(
            "periodUnit"
        ),
    ),
    (
        "obs-3",
        lambda b: _first(b, "Observation").update(referenceRange=[{"type": {"text": "normal"}}]),
    ),
    ("obs-6", lambda b: _first(b, "Observation").update(dataAbsentReason={"text": "error"})),
    ("mad-1", lambda b: _first(b, "MedicationAdministration")["dosage"].pop("dose")),
    (
        "cpl-3",
        lambda b: _first(b, "CarePlan")["activity"][0].update(
            reference={"reference": "urn:uuid:1"}
        ),
    ),
    (
        "dom-3",
        lambda b: _first(b, "Patient").update(
            contained=[{"resourceType": "Organization", "id": "o1", "name": "x"}]
        ),
    ),
]


@pytest.mark.parametrize(("rule", "breaks"), BREAKS, ids=[r for r, _ in BREAKS])
def test_each_invariant_check_catches_its_violation(
    rule: str, breaks: Callable[[Json], None]
) -> None:
    bundle = copy.deepcopy(_export())
    breaks(bundle)
    assert any(p.startswith(f"{rule}: ") for p in bundle_problems(bundle)), bundle_problems(bundle)


def test_a_reference_to_a_resource_outside_the_bundle_is_found() -> None:
    bundle = _export()
    _first(bundle, "Observation")["subject"] = {"reference": "Patient/elsewhere"}
    (problem,) = unresolved_references(bundle)
    assert problem.endswith("'Patient/elsewhere' is not in the Bundle")


def test_a_contained_resource_referred_to_is_fine() -> None:
    resource = {
        "resourceType": "MedicationStatement",
        "contained": [{"resourceType": "Medication", "id": "m1"}],
        "medicationReference": {"reference": "#m1"},
    }
    assert resource_problems(resource) == []
