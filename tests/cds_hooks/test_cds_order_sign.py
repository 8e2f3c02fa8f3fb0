"""order-sign: a draft B12 (or folic acid) order checked against the record and the protocol."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from b12plan.knowledge import load_knowledge
from tests.cds_hooks.conftest import Hooks, assert_valid, codes
from tests.cds_hooks.ehr import (
    b12_draft,
    draft_bundle,
    hook_request,
    prefetch_for,
    scenario_case,
)
from tests.fhir.support import read_back

K = load_knowledge()
SERVICE = "b12plan-order-sign"
PID = "ehr-42"
IM, IV = "78421000", "47625008"


def _sign(
    case: dict[str, Any], *orders: dict[str, Any], hooks: Hooks | None = None, prefetch: bool = True
) -> list[dict[str, Any]]:
    as_of = date.fromisoformat(case["as_of"])
    body = hook_request(
        "order-sign",
        PID,
        draftOrders=draft_bundle(*orders),
        **({"prefetch": prefetch_for(case, PID)} if prefetch else {}),
    )
    return (hooks or Hooks(as_of)).cards(SERVICE, body)


def _only(cards: list[dict[str, Any]], code: str) -> dict[str, Any]:
    (card,) = [c for c in cards if c["source"].get("topic", {}).get("code") == code]
    return card


def test_a_three_monthly_order_for_an_untreated_neurological_patient() -> None:
    """Maintenance from the start, and at an interval too long for the neurological protocol:
    the suggestion is the neurological loading regimen, as an update of the draft."""
    case = scenario_case("gb-neuro-untreated")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=3, period_unit="mo")
    )
    assert codes(cards) == ["INTERVAL_LONGER_THAN_PROTOCOL", "MAINTENANCE_WITHOUT_LOADING"]
    (suggestion,) = _only(cards, "MAINTENANCE_WITHOUT_LOADING")["suggestions"]
    assert suggestion["label"] == (
        "Order hydroxocobalamin 1 mg IM every 2 days (loading, gb-hydroxocobalamin-neuro)"
    )
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    order = action["resource"]
    assert (order["id"], order["status"]) == ("draft-1", "draft")
    (dosage,) = order["dosageInstruction"]
    assert dosage["timing"]["repeat"]["period"] == 2
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1


def test_the_suggested_order_reads_back_as_the_protocol_regimen() -> None:
    case = scenario_case("gb-neuro-untreated")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=3, period_unit="mo")
    )
    order = cards[0]["suggestions"][0]["actions"][0]["resource"]
    order = {**order, "status": "active", "authoredOn": case["as_of"]}
    patient = prefetch_for(case, PID)["patient"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": order}],
    }
    rx = read_back(bundle, as_of=date(2026, 4, 10), knowledge=K)["prescription"]
    assert rx == {
        "product": "hydroxocobalamin",
        "dose": 1,
        "unit": "mg",
        "route": "IM",
        "phase": "loading",
        "interval_days": 2,
        "start": case["as_of"],
    }


def test_the_protocol_regimen_itself_raises_nothing() -> None:
    case = scenario_case("gb-neuro-untreated")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=2, period_unit="d")
    )
    assert cards == [], "the patient's untreated state is patient-view's, not this order's"


def test_the_cyanide_antidote_is_critical() -> None:
    case = scenario_case("gb-neuro-untreated")
    cards = _sign(case, b12_draft(PID, dose=5, unit="g", route_snomed=IV, every=1, period_unit="d"))
    card = _only(cards, "PRODUCT_NOT_FOR_DEFICIENCY")
    assert card["indicator"] == "critical"
    assert "cyanide" in card["summary"]
    assert card["suggestions"][0]["isRecommended"] is True


def test_a_mg_for_mcg_slip_is_critical() -> None:
    case = scenario_case("gb-non-neuro-loading-midway")
    cards = _sign(
        case, b12_draft(PID, dose=1000, unit="mg", route_snomed=IM, every=2, period_unit="d")
    )
    # 1000 mg is also a different strength from the 1 mg injections already given.
    assert codes(cards) == ["DOSE_UNIT_SUSPECT", "PRODUCT_STRENGTH_MISMATCH"]
    assert cards[0]["indicator"] == "critical"


def test_a_switch_of_product_against_earlier_injections_is_flagged() -> None:
    case = scenario_case("gb-non-neuro-loading-midway")
    cards = _sign(
        case,
        b12_draft(
            PID, dose=1000, unit="ug", route_snomed=IM, every=2, period_unit="d", atc="B03BA01"
        ),
    )
    assert "PRODUCT_STRENGTH_MISMATCH" in codes(cards)


def test_an_interval_longer_than_the_protocol_on_maintenance() -> None:
    case = scenario_case("gb-neuro-persisting-on-3-monthly")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=6, period_unit="mo")
    )
    card = _only(cards, "INTERVAL_LONGER_THAN_PROTOCOL")
    assert card["indicator"] == "warning"
    assert "every 56 days (maintenance" in card["suggestions"][0]["label"]


def test_moving_to_maintenance_before_loading_is_done() -> None:
    case = scenario_case("gb-non-neuro-loading-midway")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=3, period_unit="mo")
    )
    assert "LOADING_INCOMPLETE" in codes(cards)


def test_a_recorded_allergic_reaction_shows_on_any_b12_order() -> None:
    case = scenario_case("anaphylaxis-recorded")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=2, period_unit="d")
    )
    card = _only(cards, "ALLERGIC_REACTION")
    assert (card["indicator"], "suggestions" in card) == ("critical", False)


def test_folic_acid_ordered_before_any_b12_is_critical() -> None:
    case = scenario_case("gb-neuro-untreated")
    folic = {
        "resourceType": "MedicationRequest",
        "id": "fa-1",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": "B03BB01"}]
        },
    }
    cards = _sign(case, folic)
    assert codes(cards) == ["FOLATE_WITHOUT_B12"]


def test_orders_b12plan_does_not_check_need_no_record() -> None:
    case = scenario_case("gb-neuro-untreated")
    amoxicillin = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "medicationCodeableConcept": {"text": "Amoxicillin 500 mg capsules"},
    }
    hooks = Hooks(date.fromisoformat(case["as_of"]))
    assert _sign(case, amoxicillin, hooks=hooks, prefetch=False) == []
    assert hooks.looked_up == [], "no record was fetched for an order that is not ours"


def test_the_store_record_serves_when_there_is_no_prefetch() -> None:
    case = scenario_case("gb-neuro-untreated")
    draft = b12_draft(PID, dose=5, unit="g", route_snomed=IV, every=1, period_unit="d")
    with_prefetch = _sign(case, draft)
    hooks = Hooks(date.fromisoformat(case["as_of"]), cases={PID: case})
    assert _sign(case, draft, hooks=hooks, prefetch=False) == with_prefetch


def test_an_unreadable_draft_is_a_card_pointing_into_draft_orders() -> None:
    case = scenario_case("gb-neuro-untreated")
    draft = b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=2, period_unit="d")
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"] = {
        "value": 1,
        "unit": "ampoule",
    }
    (card,) = _sign(case, draft)
    assert "could not check the draft order" in card["summary"]
    assert (
        "context.draftOrders.entry[0].resource.dosageInstruction[0].doseAndRate[0]"
        ".doseQuantity.unit: unknown unit 'ampoule'"
    ) in card["detail"]


def test_a_draft_for_another_patient_is_refused() -> None:
    case = scenario_case("gb-neuro-untreated")
    draft = b12_draft("someone-else", dose=1, unit="mg", route_snomed=IM, every=2, period_unit="d")
    (card,) = _sign(case, draft)
    assert "not this record's patient" in card["detail"]


@pytest.mark.parametrize(
    "draft_orders",
    [None, {"resourceType": "Patient"}],
    ids=["missing", "not-a-bundle"],
)
def test_order_sign_needs_a_draft_orders_bundle(draft_orders: Any) -> None:
    body = hook_request("order-sign", PID)
    if draft_orders is not None:
        body["context"]["draftOrders"] = draft_orders
    response = Hooks(date(2026, 3, 1)).call(SERVICE, body)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["context.draftOrders"]


def test_a_structurally_invalid_draft_bundle_is_400() -> None:
    body = hook_request(
        "order-sign",
        PID,
        draftOrders={
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "MedicationRequest"}}],
        },
    )
    response = Hooks(date(2026, 3, 1)).call(SERVICE, body)
    assert response.status_code == 400
    (issue, *_) = response.json()["issue"]
    assert issue["code"] == "structure"
    assert issue["expression"][0].startswith("context.draftOrders.entry[0].resource.")


# --- contract v1.1 ------------------------------------------------------------------------------

ORAL = "26643006"


def test_a_new_injection_order_while_injections_are_on_hold_is_critical() -> None:
    case = scenario_case("anaphylaxis-hold-never-overdue")
    cards = _sign(
        case, b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=2, period_unit="d")
    )
    card = _only(cards, "ALLERGIC_REACTION")
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Injections on hold after an allergic reaction")
    assert len(card["summary"]) < 140 and "suggestions" not in card


def test_a_cleared_rechallenge_is_no_longer_called_a_hold() -> None:
    case = scenario_case("anaphylaxis-hold-never-overdue")
    day = case["as_of"]
    cleared = {
        **case,
        "decisions": [
            {"code": "rechallenge_cleared", "date": day, "by": "Dr A", "reason": "Allergy review."}
        ],
    }
    # the FHIR prefetch does not carry decisions (yet): the store's record does
    hooks = Hooks(date.fromisoformat(day), cases={PID: cleared})
    cards = _sign(
        cleared,
        b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=2, period_unit="d"),
        hooks=hooks,
        prefetch=False,
    )
    card = _only(cards, "ALLERGIC_REACTION")
    assert not card["summary"].startswith("Injections on hold")


def test_an_oral_order_for_a_neurological_patient_is_critical_and_never_an_injection() -> None:
    """Tablets are not the neurological injection protocol: a critical card says so, and the
    under-treatment the order causes is shown with the injection course as the suggestion."""
    case = scenario_case("gb-neuro-untreated")
    cards = _sign(
        case,
        b12_draft(
            PID, dose=1000, unit="mcg", route_snomed=ORAL, every=1, period_unit="d", atc="B03BA01"
        ),
    )
    oral = [c for c in cards if c["summary"].startswith("Oral B12 ordered")]
    assert [c["indicator"] for c in oral] == ["critical"]
    assert "gb-hydroxocobalamin-neuro" in oral[0]["detail"]
    assert_card_shapes(cards)
    undertreated = _only(cards, "NEURO_UNDERTREATED")
    (suggestion,) = undertreated["suggestions"]
    assert "IM" in suggestion["label"] and "gb-hydroxocobalamin-neuro" in suggestion["label"]


def test_an_oral_order_where_oral_maintenance_is_an_option_is_not_flagged() -> None:
    case = scenario_case("dietary-oral-option")
    cards = _sign(
        case,
        b12_draft(
            PID, dose=1000, unit="mcg", route_snomed=ORAL, every=1, period_unit="d", atc="B03BA01"
        ),
    )
    assert not [c for c in cards if c["summary"].startswith("Oral B12 ordered")]


def assert_card_shapes(cards: list[dict[str, Any]]) -> None:
    for card in cards:
        assert_valid("card", card)
