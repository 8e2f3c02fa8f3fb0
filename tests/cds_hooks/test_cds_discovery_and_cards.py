"""Discovery and the finding-to-card mapping, checked against the CDS Hooks 2.0 shapes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from b12plan.cds_hooks import data_problem_card, finding_to_card, load_services
from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.assessment import Finding
from b12plan.knowledge import load_knowledge
from tests.cds_hooks.conftest import Hooks, assert_valid, counting_ids

K = load_knowledge()
CODES = [f.code for f in K.findings]


def test_discovery_lists_both_services_with_prefetch() -> None:
    response = Hooks(date(2026, 3, 1)).client.get("/cds-services")
    assert response.status_code == 200
    document = response.json()
    assert_valid("discovery", document)
    services = {s["id"]: s for s in document["services"]}
    assert {k: s["hook"] for k, s in services.items()} == {
        "b12plan-patient-view": "patient-view",
        "b12plan-order-sign": "order-sign",
    }
    prefetch = services["b12plan-patient-view"]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    for key in ("observations", "medicationRequests", "medicationAdministrations", "conditions"):
        assert "patient={{context.patientId}}" in prefetch[key]
    for analyte in K.analytes:
        for loinc in analyte.loinc:
            assert f"http://loinc.org|{loinc}" in prefetch["observations"]


def test_service_code_lists_name_contract_findings_only() -> None:
    for spec in load_services():
        for code in (
            *spec.codes,
            *spec.always_codes,
            *spec.suggest_protocol_regimen,
            *spec.info_only_when_treated,
        ):
            assert code in CODES, f"{spec.id}: {code} is not a contract finding code"
        assert set(spec.always_codes) <= set(spec.codes)


def _finding(code: str, message: str | None = None) -> Finding:
    spec = K.finding(code)
    return Finding(
        code=code,
        severity=spec.severity,
        message=message or spec.title + ".",
        evidence=(("due", date(2026, 3, 3)), ("items", ("a | b", "c")), ("days", 2.0)),
        source=spec.source,
    )


@pytest.mark.parametrize("code", CODES)
def test_every_finding_makes_a_valid_card(code: str) -> None:
    card = finding_to_card(_finding(code), knowledge=K, id_factory=counting_ids())
    assert_valid("card", card)
    spec = K.finding(code)
    assert card["indicator"] == spec.severity
    assert card["source"]["label"] == f"b12plan ({spec.source})"
    assert card["source"]["topic"]["code"] == code
    assert spec.advice in card["detail"] and spec.rule in card["detail"]


def test_the_card_detail_carries_the_evidence_as_a_table() -> None:
    card = finding_to_card(_finding("INJECTION_OVERDUE"), knowledge=K, id_factory=counting_ids())
    assert "| due | 2026-03-03 |" in card["detail"]
    assert "| items | a \\| b; c |" in card["detail"]
    assert "| days | 2 |" in card["detail"]


def test_a_long_message_leaves_the_title_as_summary() -> None:
    long = "x" * 200
    card = finding_to_card(
        _finding("ADHERENCE_GAP", message=long), knowledge=K, id_factory=counting_ids()
    )
    assert card["summary"] == K.finding("ADHERENCE_GAP").title
    assert long in card["detail"]


def test_the_source_links_to_the_first_cited_source_with_a_url() -> None:
    card = finding_to_card(_finding("NEURO_UNDERTREATED"), knowledge=K, id_factory=counting_ids())
    ng239 = next(s for s in K.sources if s.id == "NG239")
    assert card["source"]["url"] == ng239.url


def test_ids_come_from_the_injected_factory() -> None:
    ids = counting_ids()
    first = finding_to_card(_finding("ALLERGIC_REACTION"), knowledge=K, id_factory=ids)
    second = finding_to_card(_finding("ALLERGIC_REACTION"), knowledge=K, id_factory=ids)
    assert (first["uuid"], second["uuid"]) == (
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    )


def test_suggestions_come_with_a_selection_behaviour() -> None:
    suggestion: dict[str, Any] = {"label": "Order the protocol regimen", "actions": []}
    card = finding_to_card(
        _finding("DOSE_UNIT_SUSPECT"),
        knowledge=K,
        id_factory=counting_ids(),
        suggestions=[suggestion],
    )
    assert card["selectionBehavior"] == "at-most-one"
    assert_valid("card", card)


def test_a_data_problem_card_lists_the_paths() -> None:
    problems = [
        {"loc": f"entry[{n}].resource.valueQuantity.unit", "msg": "unknown unit", "type": "value"}
        for n in range(25)
    ]
    card = data_problem_card(problems, what="this patient's record", id_factory=counting_ids())
    assert_valid("card", card)
    assert card["indicator"] == "warning"
    assert "25 data problems" in card["summary"]
    assert "- entry[0].resource.valueQuantity.unit: unknown unit" in card["detail"]
    assert "… and 5 more" in card["detail"]


def test_every_code_the_scenarios_raise_gives_a_valid_card_with_its_real_message() -> None:
    """The v1.1 codes too: real messages (not titles) are what must fit the summary."""
    raised: set[str] = set()
    for path in sorted((Path(__file__).parents[1] / "scenarios").glob("*.json")):
        case = parse_case(json.loads(path.read_text())["case"], K)
        for finding in evaluate(case, K, as_of=case.as_of).findings:
            card = finding_to_card(finding, knowledge=K, id_factory=counting_ids())
            assert_valid("card", card)
            assert len(card["summary"]) < 140 and card["indicator"] == finding.severity
            raised.add(finding.code)
    assert raised == set(CODES)
