"""Export then import gives the case back: every scenario, our fixtures, generated cases."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings

from b12plan.contract import case_to_dict, parse_case
from b12plan.fhir import case_to_bundle, import_bundle
from b12plan.knowledge import load_knowledge
from tests.fhir.strategies import case_documents
from tests.fhir.support import bundle_of, read_back

K = load_knowledge()
TESTS = Path(__file__).parent.parent
SCENARIOS = sorted((TESTS / "scenarios").glob("*.json"))
FIXTURES = sorted((Path(__file__).parent / "cases").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _round_trip(case: dict[str, Any]) -> dict[str, Any]:
    bundle = bundle_of(case, knowledge=K)
    return read_back(bundle, as_of=date.fromisoformat(case["as_of"]), knowledge=K)


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]]


def canonical(case: dict[str, Any]) -> dict[str, Any]:
    return case_to_dict(parse_case(case, K))


def test_the_scenarios_are_there() -> None:
    assert len(SCENARIOS) >= 20


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_survives_the_round_trip(path: Path) -> None:
    case = _load(path)["case"]
    assert _round_trip(case) == canonical(case)


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_s_case_comes_back_as_an_equal_case(path: Path) -> None:
    """The writer and the reader on ``Case`` objects alone: no document in between."""
    case = parse_case(_load(path)["case"], K)
    bundle = case_to_bundle(case, knowledge=K)
    assert import_bundle(bundle, as_of=case.as_of, knowledge=K, partial=False).case == case


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_canonical_fixtures_come_back_identical(path: Path) -> None:
    case = _load(path)
    assert canonical(case) == case, "fixture must be in canonical (case_to_dict) form"
    assert _round_trip(case) == case


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_exported_bundles_validate_as_r4(path: Path) -> None:
    bundle = bundle_of(_load(path), knowledge=K)
    model = Bundle.model_validate(bundle)
    assert model.type == "collection"
    assert model.model_dump(mode="json", exclude_none=True) == bundle


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case_documents())
def test_generated_cases_survive_the_round_trip(doc: dict[str, Any]) -> None:
    case = canonical(doc)
    assert _round_trip(case) == case


def test_export_is_deterministic_and_the_bundle_id_seeds_entry_ids() -> None:
    case = _load(FIXTURES[0])
    first, second = (
        bundle_of(case, knowledge=K),
        bundle_of(copy.deepcopy(case), knowledge=K),
    )
    assert first == second
    other = bundle_of(case, bundle_id="export-2", knowledge=K)
    assert other["id"] == "export-2"
    assert {e["fullUrl"] for e in other["entry"]}.isdisjoint({e["fullUrl"] for e in first["entry"]})


def test_import_ignores_what_b12plan_derived_on_export() -> None:
    """The CarePlan and the protocol's maintenance phase are our plan, not the record."""
    case = _load(TESTS / "fhir" / "cases" / "us-cyanocobalamin-loading.json")
    bundle = bundle_of(case, knowledge=K)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "CarePlan" in kinds
    order = next(r for r in _resources(bundle) if r["resourceType"] == "MedicationRequest")
    assert [d["sequence"] for d in order["dosageInstruction"]] == [1, 2]
    order["dosageInstruction"][1]["doseAndRate"][0]["doseQuantity"]["value"] = 99
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "CarePlan":
            e["resource"]["activity"] = e["resource"]["activity"][:1]
    assert read_back(bundle, as_of=date(2026, 2, 10), knowledge=K) == case


def test_a_bundle_without_the_plan_reads_the_same() -> None:
    case = _load(FIXTURES[0])
    bundle = bundle_of(case, include_plan=False, knowledge=K)
    assert "CarePlan" not in [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert read_back(bundle, as_of=date.fromisoformat(case["as_of"]), knowledge=K) == case
