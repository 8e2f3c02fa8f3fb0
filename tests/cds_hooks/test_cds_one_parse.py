"""A hook reads the patient's record into a ``Case`` once and works on that ``Case``: no case
document is written back and parsed again on the way from the FHIR import to the cards."""

from __future__ import annotations

from datetime import date

import pytest

from tests.cds_hooks.conftest import Hooks, codes
from tests.cds_hooks.ehr import b12_draft, draft_bundle, hook_request, prefetch_for, scenario_case
from tests.parse_count import count_parses

PID = "ehr-42"
IV = "47625008"


def test_patient_view_from_a_prefetch_parses_the_record_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = scenario_case("gb-neuro-persisting-on-3-monthly")
    hooks = Hooks(date.fromisoformat(case["as_of"]))
    parsed = count_parses(monkeypatch)
    cards = hooks.cards(
        "b12plan-patient-view", hook_request("patient-view", PID, prefetch=prefetch_for(case, PID))
    )
    assert "NEURO_UNDERTREATED" in codes(cards)
    assert len(parsed) == 1, "the FHIR import's parse, and no other"


def test_order_sign_parses_the_record_once_and_each_draft_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The record once (the FHIR import), each draft once as its own one-order case; the
    variants evaluated with the drafts in them are built from the ``Case``, not parsed."""
    case = scenario_case("gb-neuro-untreated")
    hooks = Hooks(date.fromisoformat(case["as_of"]))
    body = hook_request(
        "order-sign",
        PID,
        draftOrders=draft_bundle(
            b12_draft(PID, dose=5, unit="g", route_snomed=IV, every=1, period_unit="d")
        ),
        prefetch=prefetch_for(case, PID),
    )
    parsed = count_parses(monkeypatch)
    cards = hooks.cards("b12plan-order-sign", body)
    assert "PRODUCT_NOT_FOR_DEFICIENCY" in codes(cards)
    record, draft = parsed
    assert record["patient"]["id"] == case["patient"]["id"]
    assert set(draft) == {"schema_version", "as_of", "jurisdiction", "patient", "prescription"}


def test_the_store_s_case_is_used_as_it_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    """No prefetch, no FHIR server: the store's ``Case`` (parsed by the store, here the test's
    own) is used as it is, re-dated to the request's day without a document in between."""
    case = scenario_case("gb-neuro-persisting-on-3-monthly")
    hooks = Hooks(date.fromisoformat(case["as_of"]), cases={PID: case})
    parsed = count_parses(monkeypatch)
    cards = hooks.cards("b12plan-patient-view", hook_request("patient-view", PID))
    assert "NEURO_UNDERTREATED" in codes(cards)
    assert parsed == [], "the hook parses nothing the store has read"
