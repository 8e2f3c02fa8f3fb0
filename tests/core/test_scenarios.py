"""Every clinical scenario file, through the pure core."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.knowledge import load_knowledge
from tests.scenario_support import load_scenarios, mismatches

SCENARIOS = load_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_scenario_through_core(scenario: dict[str, Any]) -> None:
    knowledge = load_knowledge()
    case = parse_case(scenario["case"], knowledge)
    assessment = evaluate(case, knowledge, as_of=date.fromisoformat(scenario["case"]["as_of"]))
    assert mismatches(scenario["expect"], assessment.to_dict()) == [], scenario["rationale"]


def test_there_are_at_least_forty_scenarios_with_rationale_and_source() -> None:
    assert len(SCENARIOS) >= 40
    for s in SCENARIOS:
        assert s["rationale"].strip() and s["source"].strip(), s["id"]
