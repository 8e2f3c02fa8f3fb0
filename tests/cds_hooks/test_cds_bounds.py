"""order-sign with an absurd period: a data-problem answer, never a 500 (issue 13)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.cds_hooks.conftest import Hooks
from tests.cds_hooks.ehr import b12_draft, draft_bundle, hook_request, prefetch_for, scenario_case

PID = "ehr-42"
IM = "78421000"


@pytest.mark.parametrize("every", [1e308, 1e6, float("1e20")])
def test_an_order_repeating_once_in_1e308_years_is_refused_not_a_crash(every: float) -> None:
    case = scenario_case("gb-neuro-untreated")
    order = b12_draft(PID, dose=1, unit="mg", route_snomed=IM, every=1, period_unit="a")
    order["dosageInstruction"][0]["timing"]["repeat"]["period"] = every
    body = hook_request(
        "order-sign", PID, draftOrders=draft_bundle(order), prefetch=prefetch_for(case, PID)
    )
    response = Hooks(date.fromisoformat(case["as_of"])).call("b12plan-order-sign", body)
    assert response.status_code < 500, response.text
    assert "longer than" in response.text
