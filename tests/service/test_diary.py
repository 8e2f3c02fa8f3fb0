"""The symptom diary: how a patient's 0-10 scores become contract symptom statuses."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from b12plan.knowledge import load_knowledge
from b12plan.service.diary import (
    DiaryError,
    Previous,
    check_rules,
    diary_entries,
    diary_status,
    latest_by_code,
    load_diary_rules,
    parse_scores,
    score_from_note,
    score_note,
)

RULES = load_diary_rules()
STEP = RULES.change_points


@pytest.mark.parametrize(
    ("score", "previous", "expected"),
    [
        pytest.param(0, Previous(), None, id="zero-never-reported-records-nothing"),
        pytest.param(0, Previous("resolved", 0), None, id="zero-already-resolved-records-nothing"),
        pytest.param(0, Previous("present", 5), "resolved", id="zero-after-present-is-resolved"),
        pytest.param(0, Previous("present", None), "resolved", id="zero-after-clinic-report"),
        pytest.param(4, Previous(), "present", id="first-report-is-present"),
        pytest.param(4, Previous("resolved", 0), "present", id="back-after-resolved-is-present"),
        pytest.param(4, Previous("present", None), "present", id="no-earlier-score-is-present"),
        pytest.param(4 + STEP, Previous("present", 4), "worsening", id="up-by-step-is-worsening"),
        pytest.param(4, Previous("present", 4 + STEP), "improving", id="down-by-step-improving"),
        pytest.param(4, Previous("present", 4 + STEP - 1), "present", id="small-change-present"),
        pytest.param(4, Previous("improving", 4), "stable", id="plateau-after-improving-stable"),
        pytest.param(5, Previous("stable", 4), "stable", id="still-flat-stays-stable"),
        pytest.param(4, Previous("worsening", 4), "present", id="flat-after-worsening-present"),
    ],
)
def test_score_to_status(score: int, previous: Previous, expected: str | None) -> None:
    assert diary_status(score, previous, RULES) == expected


@pytest.mark.parametrize("previous", [Previous("improving", 4), Previous("stable", 4)])
def test_the_diary_never_ends_neurological_loading_on_its_own(previous: Previous) -> None:
    # "stable" (no further improvement) ends alternate-day loading: the clinician decides that
    assert diary_status(4, previous, RULES, neurological=True) == "present"
    assert diary_status(4 - STEP, previous, RULES, neurological=True) == "improving"


def test_every_scale_feeds_a_contract_symptom_code() -> None:
    knowledge = load_knowledge()
    check_rules(RULES, knowledge)
    assert {s.code for s in RULES.scales} == {
        "fatigue",
        "paraesthesia",
        "balance_problems",
        "memory_problems",
    }


def test_a_typo_in_the_mapping_fails_at_start_up() -> None:
    broken = dataclasses.replace(
        RULES, scales=(dataclasses.replace(RULES.scales[0], code="tiredness"),)
    )
    with pytest.raises(DiaryError, match="tiredness"):
        check_rules(broken, load_knowledge())


def test_one_entry_records_only_the_answered_scales() -> None:
    day = date(2026, 3, 2)
    entries = diary_entries(
        {"fatigue": 6, "tingling": None, "balance": 0, "memory": 2},
        {"balance_problems": Previous("improving", 3), "memory_problems": Previous("improving", 2)},
        day,
        RULES,
        load_knowledge(),
    )
    assert [(e.code, e.status, e.score) for e in entries] == [
        ("fatigue", "present", 6),
        ("balance_problems", "resolved", 0),
        ("memory_problems", "present", 2),  # neurological plateau: not "stable"
    ]
    assert entries[0].note == score_note(6, RULES.scale_max)


def test_scores_outside_the_scale_are_refused_by_field() -> None:
    scores, errors = parse_scores({"fatigue": "11", "tingling": "x", "balance": "3"}, RULES)
    assert set(errors) == {"fatigue", "tingling"}
    assert "0 to 10" in errors["fatigue"]
    assert scores == {"balance": 3, "memory": None}


def test_the_score_travels_in_the_note() -> None:
    assert score_from_note(score_note(7, 10)) == 7
    assert score_from_note("entered by the clinic") is None
    assert score_from_note(None) is None


def test_the_latest_report_per_symptom_wins() -> None:
    history = latest_by_code(
        [
            ("fatigue", date(2026, 1, 1), "present", "diary score 8/10"),
            ("fatigue", date(2026, 2, 1), "improving", "diary score 5/10"),
            ("fatigue", date(2026, 2, 1), "stable", None),  # same day, recorded later
            ("paraesthesia", date(2026, 1, 5), "present", None),
        ]
    )
    assert history["fatigue"] == Previous("stable", None)
    assert history["paraesthesia"] == Previous("present", None)
