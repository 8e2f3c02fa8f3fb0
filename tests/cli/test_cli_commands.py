"""``explain``, ``protocols``, ``schedule``, ``demo`` and the exit-code contract, in process.

The Typer app runs in this process (fast) for the per-code and per-scenario tables; the
process-level behaviour is covered in ``test_cli_assess.py`` and ``test_cli_schedule.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from b12plan.cli import app, core_commands, steps
from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.examples import TITLES, example_cases
from b12plan.knowledge import load_knowledge
from tests.scenario_support import load_scenarios, mismatches

KNOWLEDGE = load_knowledge()
SCENARIOS = load_scenarios()
runner = CliRunner()


def invoke(*args: str, input: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


@pytest.mark.parametrize("code", [f.code for f in KNOWLEDGE.findings])
def test_explain_every_finding_code(code: str) -> None:
    spec = KNOWLEDGE.finding(code)
    human = invoke("explain", code)
    assert human.exit_code == 0, human.stderr
    assert code in human.stdout
    assert spec.severity in human.stdout
    as_json = invoke("explain", code.lower(), "--json")
    assert as_json.exit_code == 0, as_json.stderr
    got = json.loads(as_json.stdout)
    assert (got["code"], got["severity"], got["rule"], got["advice"], got["message"]) == (
        spec.code,
        spec.severity,
        spec.rule,
        spec.advice,
        spec.message,
    )
    citations = {s.id: s.citation for s in KNOWLEDGE.sources}
    assert [s["citation"] for s in got["sources"]] == [
        citations[part.strip()] for part in spec.source.split("+")
    ]


def test_explain_unknown_code_exits_2_listing_the_codes() -> None:
    result = invoke("explain", "NOT_A_CODE")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "unknown finding code 'NOT_A_CODE'" in result.stderr
    assert "NO_PRETREATMENT_TEST" in result.stderr


def test_protocols_lists_every_protocol_with_its_sources() -> None:
    result = invoke("protocols", "--json")
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    assert [p["id"] for p in got] == [p.id for p in KNOWLEDGE.protocols]
    for row, protocol in zip(got, KNOWLEDGE.protocols, strict=True):
        assert row["maintenance"]["description"] == protocol.maintenance.description
        assert [s["description"] for s in row["loading"]] == [
            s.description for s in protocol.loading
        ]
        assert row["lifelong_when_chronic"] == protocol.lifelong_when_chronic
        assert all(s["citation"] for s in row["sources"])
    human = invoke("protocols")
    assert human.exit_code == 0, human.stderr
    for protocol in KNOWLEDGE.protocols:
        assert protocol.id in human.stdout
    assert "NICE guideline NG239" in human.stdout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_assess_json_equals_core_for_every_scenario(scenario: dict[str, Any]) -> None:
    result = invoke("assess", "-", "--json", input=json.dumps(scenario["case"]))
    assert result.exit_code == 0, result.stderr
    case = parse_case(scenario["case"], KNOWLEDGE)
    got = json.loads(result.stdout)
    assert got == evaluate(case, KNOWLEDGE, as_of=case.as_of).to_dict()
    assert mismatches(scenario["expect"], got) == [], scenario["rationale"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "stdin: invalid JSON at line 1 column 1"),
        ("[1, 2]", "stdin: expected an object, got a list"),
        ('{"a": 1, "a": 2}', "stdin: invalid JSON: duplicate key 'a'"),
        ('{"schema_version": 1, "as_of": "2026-03-01", "x": NaN}', "x: unknown key"),
    ],
    ids=["empty", "not-an-object", "duplicate-key", "nan"],
)
def test_malformed_input_exits_2(text: str, needle: str) -> None:
    result = invoke("assess", "-", "--json", input=text)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(needle)


def test_as_of_before_birth_exits_2() -> None:
    result = invoke("assess", "-", "--as-of", "1950-01-01", input=example_cases()[0].text)
    assert result.exit_code == 2
    assert result.stderr == "--as-of: 1950-01-01 is before the birth date 1958-04-02\n"


def test_an_internal_failure_exits_1_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(steps, "assess_case", broken)
    case = Path(core_commands.__file__).parents[1] / "examples" / "01-pa-neuro-loading.json"
    result = invoke("assess", str(case), "--json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "b12plan: internal error (ZeroDivisionError): division by zero\n"


def test_records_after_as_of_are_accepted_and_change_nothing() -> None:
    """Contract: a record dated after as_of is 'not yet recorded' - valid input, no effect."""
    case = json.loads(example_cases()[2].text)
    before = invoke("assess", "-", "--json", input=json.dumps(case))
    case["administrations"].append(
        {
            "date": "2030-01-01",
            "product": "hydroxocobalamin",
            "dose": 1,
            "unit": "mg",
            "route": "IM",
        }
    )
    after = invoke("assess", "-", "--json", input=json.dumps(case))
    assert before.exit_code == after.exit_code == 0
    assert after.stdout == before.stdout


def test_schedule_without_ics_prints_the_schedule_table() -> None:
    example = example_cases()[3]
    case = parse_case(json.loads(example.text), KNOWLEDGE)
    assessment = evaluate(case, KNOWLEDGE, as_of=case.as_of)
    result = invoke("schedule", "-", input=example.text)
    assert result.exit_code == 0, result.stderr
    for dose in assessment.schedule:
        assert dose.date.isoformat() in result.stdout
    assert "Schedule" in result.stdout


def test_each_shipped_example_is_valid_and_titled(knowledge: Knowledge) -> None:
    examples = example_cases()
    assert [e.name for e in examples] == sorted(TITLES)
    for example in examples:
        case = parse_case(json.loads(example.text), knowledge)
        assert case.patient.id


EXAMPLE_STORIES = {
    "01-pa-neuro-loading.json": ("loading", "gb-hydroxocobalamin-neuro", None),
    "02-monthly-from-the-start.json": ("maintenance", None, "MAINTENANCE_WITHOUT_LOADING"),
    "03-overdue-maintenance.json": ("maintenance", None, "INJECTION_OVERDUE"),
    "04-us-cyanocobalamin-maintenance.json": (
        "maintenance",
        "us-cyanocobalamin-1000",
        "MAINTENANCE_APPROPRIATE",
    ),
    "05-no-pretreatment-test.json": (None, None, "NO_PRETREATMENT_TEST"),
    "06-stopped-lifelong.json": ("stopped", None, "STOPPED_LIFELONG_THERAPY"),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_STORIES))
def test_each_example_tells_its_story(name: str, knowledge: Knowledge) -> None:
    """The demo is only useful if each example still shows what its title promises."""
    phase, protocol, code = EXAMPLE_STORIES[name]
    example = next(e for e in example_cases() if e.name == name)
    case = parse_case(json.loads(example.text), knowledge)
    assessment = evaluate(case, knowledge, as_of=case.as_of)
    if phase is not None:
        assert assessment.phase == phase
    if protocol is not None:
        assert assessment.regimen is not None
        assert assessment.regimen.protocol_id == protocol
    if code is not None:
        assert code in assessment.codes()
    if name.startswith("01-"):
        assert not [f for f in assessment.findings if f.severity == "critical"]


def test_demo_renders_every_example() -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.stderr
    for name, title in TITLES.items():
        assert name in result.stdout
        assert title in result.stdout
    assert "STOPPED_LIFELONG_THERAPY" in result.stdout
