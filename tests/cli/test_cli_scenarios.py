"""Every clinical scenario, through ``b12plan assess - --json`` as a real process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.conftest import Run
from tests.scenario_support import load_scenarios, mismatches

SCENARIOS = load_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_scenario_through_the_cli(run_cli: Run, scenario: dict[str, Any]) -> None:
    result = run_cli("assess", "-", "--json", input=json.dumps(scenario["case"]))
    assert result.returncode == 0, result.stderr
    assert mismatches(scenario["expect"], json.loads(result.stdout)) == [], scenario["rationale"]
