"""What the pages say: dose windows, worklist order, site rotation, and patients' answers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from b12plan.contract import parse_case
from b12plan.core import DoseWindow, evaluate
from b12plan.core.assessment import Assessment
from b12plan.core.model import Administration
from b12plan.knowledge import load_knowledge
from b12plan.service.schemas import MonitoringDue, WorklistFinding, WorklistRow
from b12plan.web.answers import MONITORING_LABELS, QUESTIONS, patient_answers
from b12plan.web.forms import Field, errors_by_field, typed_values
from b12plan.web.page_models import (
    INJECTION_SITES,
    explain_findings,
    order_worklist,
    rotation_hint,
    window_view,
)

KNOWLEDGE = load_knowledge()
DAY = date(2026, 3, 2)


def assess(doc: dict[str, Any]) -> Assessment:
    case = parse_case(doc, KNOWLEDGE)
    return evaluate(case, KNOWLEDGE, as_of=case.as_of)


def neuro_loading() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "as_of": "2026-03-02",
        "patient": {"sex": "female", "birth_date": "1958-04-02"},
        "causes": ["pernicious_anaemia"],
        "symptoms": [{"code": "paraesthesia", "date": "2026-02-20", "status": "present"}],
        "observations": [
            {"code": "b12_total", "date": "2026-02-20", "value": 90, "unit": "pmol/L"}
        ],
        "administrations": [
            {"date": d, "product": "hydroxocobalamin", "dose": 1, "unit": "mg", "route": "IM"}
            for d in ("2026-02-24", "2026-02-26", "2026-02-28")
        ],
    }


# --- dose window ------------------------------------------------------------------------------

WINDOW = DoseWindow(DAY, DAY + timedelta(days=2), DAY + timedelta(days=5))


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (DAY - timedelta(days=1), "too-early"),
        (DAY, "open"),
        (DAY + timedelta(days=2), "due"),
        (DAY + timedelta(days=5), "due"),
        (DAY + timedelta(days=6), "overdue"),
    ],
)
def test_where_today_falls_in_the_dose_window(today: date, state: str) -> None:
    view = window_view(WINDOW, today)
    assert view is not None
    assert view.state == state


def test_overdue_says_by_how_many_days() -> None:
    view = window_view(WINDOW, DAY + timedelta(days=8))
    assert view is not None
    assert view.label == "overdue by 3 days"
    assert window_view(None, DAY) is None


# --- worklist order -----------------------------------------------------------------------


def row(pid: str, **kw: Any) -> WorklistRow:
    base: dict[str, Any] = {
        "patient_id": pid,
        "display_name": pid,
        "clinic_id": "c",
        "phase": "maintenance",
        "deficiency": "confirmed",
        "worst_severity": None,
        "findings": [],
        "next_dose_due": None,
        "overdue_after": None,
        "days_overdue": None,
        "monitoring_due": [],
    }
    base.update(kw)
    return WorklistRow(**base)


def finding(code: str, severity: str) -> WorklistFinding:
    return WorklistFinding(code=code, severity=severity, message=code)


def test_worklist_groups_in_the_order_a_clinic_works() -> None:
    rows = [
        row(
            "stopped",
            worst_severity="warning",
            findings=[finding("STOPPED_LIFELONG_THERAPY", "warning")],
        ),
        row("monitoring", monitoring_due=[MonitoringDue(item="fbc", due=DAY, reason="r")]),
        row(
            "later",
            monitoring_due=[MonitoringDue(item="fbc", due=DAY + timedelta(days=9), reason="r")],
        ),
        row("loading", phase="loading"),
        row(
            "overdue",
            worst_severity="warning",
            days_overdue=4,
            findings=[finding("INJECTION_OVERDUE", "warning")],
        ),
        row(
            "critical",
            worst_severity="critical",
            findings=[finding("NEURO_UNDERTREATED", "critical")],
        ),
    ]
    ordered = order_worklist(rows, DAY)
    assert [(e.row.patient_id, e.group) for e in ordered] == [
        ("critical", "critical"),
        ("overdue", "overdue"),
        ("loading", "loading"),
        ("monitoring", "monitoring"),
        ("stopped", "stopped"),
    ]  # "later" has nothing due today


# --- site rotation --------------------------------------------------------------------------


def given(day: date, site: str | None) -> Administration:
    return Administration(day, "hydroxocobalamin", 1, "mg", "IM", site=site)


def test_rotation_suggests_the_next_site_after_the_last_one() -> None:
    hint = rotation_hint(
        [
            given(DAY - timedelta(days=60), "right thigh"),
            given(DAY - timedelta(days=3), "left upper arm"),
        ]
    )
    assert hint.last_site == "left upper arm"
    assert hint.suggested == "right upper arm"
    assert "left upper arm" in hint.text


def test_rotation_wraps_round_and_copes_with_no_site() -> None:
    assert rotation_hint([given(DAY, INJECTION_SITES[-1])]).suggested == INJECTION_SITES[0]
    assert rotation_hint([given(DAY, None)]).last_site is None


# --- findings explained -----------------------------------------------------------------------


def test_findings_carry_the_knowledge_base_rule_advice_and_sources() -> None:
    doc = neuro_loading()
    doc["administrations"] = [
        {
            "date": "2026-01-05",
            "product": "hydroxocobalamin",
            "dose": 1000,
            "unit": "mg",
            "route": "IM",
        }
    ]
    views = explain_findings(assess(doc).findings, KNOWLEDGE)
    suspect = next(v for v in views if v.code == "DOSE_UNIT_SUSPECT")
    spec = KNOWLEDGE.finding("DOSE_UNIT_SUSPECT")
    assert (suspect.title, suspect.rule, suspect.advice) == (spec.title, spec.rule, spec.advice)
    assert {s.id for s in suspect.sources} == {"BNF", "US-label", "b12plan-local"}


# --- patients' questions ----------------------------------------------------------------------


def test_every_question_is_answered_with_sources() -> None:
    answers = patient_answers(assess(neuro_loading()), KNOWLEDGE)
    assert [a.id for a in answers] == list(QUESTIONS)
    for answer in answers:
        assert answer.paragraphs, answer.id
        assert answer.sources, answer.id


def test_answers_use_the_patients_own_protocol() -> None:
    answers = {a.id: a for a in patient_answers(assess(neuro_loading()), KNOWLEDGE)}
    neuro = KNOWLEDGE.protocol("gb-hydroxocobalamin-neuro")
    loading = " ".join(answers["why-loading"].paragraphs)
    assert neuro.title in loading
    assert "3 loading dose(s)" in loading
    switch = " ".join(answers["switch-monthly"].paragraphs)
    assert switch.startswith("Not yet")
    assert "nerve" in switch
    monthly = " ".join(answers["once-a-month"].paragraphs)
    assert "every 56 days" in monthly
    assert answers["switch-monthly"].personal


def test_a_late_dose_is_called_late() -> None:
    doc = neuro_loading()
    doc["as_of"] = "2026-03-20"
    monthly = {a.id: a for a in patient_answers(assess(doc), KNOWLEDGE)}["once-a-month"]
    assert any(p.startswith("Your next dose is late") for p in monthly.paragraphs)


def test_without_a_plan_nothing_is_promised() -> None:
    answers = {
        a.id: a
        for a in patient_answers(assess({"schema_version": 1, "as_of": "2026-03-02"}), KNOWLEDGE)
    }
    assert any("not set yet" in p for p in answers["why-loading"].paragraphs)
    assert answers["switch-monthly"].paragraphs[0].startswith("Not yet")


def test_every_monitoring_item_has_a_plain_name() -> None:
    assert {m.item for m in KNOWLEDGE.monitoring} <= set(MONITORING_LABELS)


# --- form text --------------------------------------------------------------------------------


def test_form_text_becomes_typed_values_or_field_errors() -> None:
    fields = (
        Field("date", "Date", "date", required=True),
        Field("dose", "Dose", "number", required=True),
        Field("interval_days", "Interval", "int"),
        Field("route", "Route", "select", choices=(("IM", "IM"),)),
        Field("brand", "Brand", "text"),
    )
    values, errors = typed_values(
        fields, {"date": "", "dose": "1,5", "interval_days": "56", "route": "IM", "brand": " "}
    )
    assert values == {"dose": 1.5, "interval_days": 56, "route": "IM"}
    assert set(errors) == {"date"}
    _, errors = typed_values(
        fields, {"date": "2026-03-02", "dose": "one", "route": "IV", "interval_days": "8.5"}
    )
    assert set(errors) == {"dose", "route", "interval_days"}


def test_service_errors_land_on_their_field_or_at_the_top() -> None:
    fields = (Field("unit", "Unit", "select"),)
    placed, general = errors_by_field(
        [
            {"loc": "unit", "msg": "unknown unit 'pmol'", "type": "unit"},
            {"loc": "observations[abc].date", "msg": "before birth", "type": "before_birth"},
        ],
        fields,
    )
    assert placed == {"unit": "Unit: Unknown unit 'pmol'"}
    assert general == ["observations[abc].date: before birth"]
