"""Clinical scenarios through ``b12plan assess - --json`` as a real process.

Every scenario also runs through the CLI in-process (``test_cli_commands.py``); here a set that
covers each phase, both jurisdictions, the unit conversions and a critical finding starts a real
process each, as a user's shell would.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.conftest import Run
from tests.scenario_support import load_scenarios, mismatches

AS_PROCESSES = {
    "gb-neuro-loading-in-progress",
    "gb-neuro-untreated",
    "gb-non-neuro-loading-complete",
    "gb-monthly-from-the-start",
    "gb-maintenance-appropriate",
    "stopped-lifelong-long-gap",
    "cyanide-antidote-ordered",
    "unit-ng-per-l-indeterminate",
    "us-1000-loading-weekly-stage",
    "us-label-100-mcg-regimen",
    "no-data",
    "record-after-as-of-ignored",
}
SCENARIOS = [s for s in load_scenarios() if s["id"] in AS_PROCESSES]


def test_the_process_set_exists() -> None:
    assert {s["id"] for s in SCENARIOS} == AS_PROCESSES


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_scenario_through_the_cli_process(run_cli: Run, scenario: dict[str, Any]) -> None:
    result = run_cli("assess", "-", "--json", input=json.dumps(scenario["case"]))
    assert result.returncode == 0, result.stderr
    assert mismatches(scenario["expect"], json.loads(result.stdout)) == [], scenario["rationale"]
