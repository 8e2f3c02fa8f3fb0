"""The reminder plan, read like a clinic's diary: who is reminded of what, and on which day."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12plan.core import evaluate
from b12plan.core.model import Case
from b12plan.reminders.knowledge import (
    ReminderKnowledgeError,
    load_reminder_rules,
    parse_reminder_rules,
)
from b12plan.reminders.plan import (
    BOOK_INJECTION,
    BOOK_REVIEW,
    CLINIC,
    DOSE_KINDS,
    INJECTION_DUE,
    INJECTION_OVERDUE,
    PATIENT,
    plan_reminders,
)
from tests.core.strategies import K, case
from tests.reminders.cases import assess, dose, pernicious_anaemia_case

RULES = load_reminder_rules()
MARCH = dt.date(2026, 3, 1)  # 3-monthly maintenance: next dose due 2026-04-10


def kinds(reminders: tuple[object, ...]) -> dict[str, object]:
    return {r.kind: r for r in reminders}  # type: ignore[attr-defined]


def test_three_monthly_clinic_dose_is_booked_fourteen_days_ahead() -> None:
    c, a = assess(pernicious_anaemia_case(MARCH))
    assert a.next_dose is not None and a.next_dose.due == dt.date(2026, 4, 10)
    plan = kinds(plan_reminders(a, c, RULES, as_of=MARCH))
    booking = plan[BOOK_INJECTION]
    assert booking.send_on == dt.date(2026, 3, 27)  # type: ignore[attr-defined]
    assert booking.lead_days == 14  # type: ignore[attr-defined]
    assert plan[INJECTION_DUE].send_on == a.next_dose.earliest  # type: ignore[attr-defined]
    overdue = plan[INJECTION_OVERDUE]
    assert overdue.send_on == a.next_dose.overdue_after + dt.timedelta(days=1)  # type: ignore[attr-defined]
    assert overdue.audience == (PATIENT, CLINIC)  # type: ignore[attr-defined]


def test_patient_who_chose_ten_days_is_reminded_ten_days_before_due() -> None:
    c, a = assess(pernicious_anaemia_case(MARCH))
    plan = kinds(plan_reminders(a, c, RULES, as_of=MARCH, lead_days=10))
    assert plan[BOOK_INJECTION].send_on == dt.date(2026, 3, 31)  # type: ignore[attr-defined]


def test_chosen_lead_time_is_kept_within_the_bounds_in_the_data() -> None:
    c, a = assess(pernicious_anaemia_case(MARCH))
    plan = kinds(plan_reminders(a, c, RULES, as_of=MARCH, lead_days=400))
    assert plan[BOOK_INJECTION].lead_days == RULES.patient_lead_max  # type: ignore[attr-defined]


def test_monthly_interval_band_gives_five_days() -> None:
    assert RULES.booking_lead(28) == 5
    assert RULES.booking_lead(84) == 14
    assert RULES.booking_lead(2) == 1


def test_self_injecting_patient_gets_no_booking_reminder_and_is_reminded_on_the_day() -> None:
    as_of = dt.date(2026, 4, 20)
    c, a = assess(
        pernicious_anaemia_case(as_of, maintenance=(dt.date(2026, 4, 8),), given_by="self")
    )
    assert a.next_dose is not None
    plan = kinds(plan_reminders(a, c, RULES, as_of=as_of))
    assert BOOK_INJECTION not in plan
    assert plan[INJECTION_DUE].send_on == a.next_dose.due  # type: ignore[attr-defined]


def test_recorded_dose_moves_every_dose_reminder_to_the_next_window() -> None:
    before_c, before_a = assess(pernicious_anaemia_case(dt.date(2026, 4, 5)))
    after_c, after_a = assess(
        pernicious_anaemia_case(dt.date(2026, 4, 9), maintenance=(dt.date(2026, 4, 8),))
    )
    old = {r.key for r in plan_reminders(before_a, before_c, RULES, as_of=dt.date(2026, 4, 5))}
    new = plan_reminders(after_a, after_c, RULES, as_of=dt.date(2026, 4, 9))
    assert not old & {r.key for r in new}
    assert all(r.target > dt.date(2026, 4, 10) for r in new if r.kind in DOSE_KINDS)


def test_allergic_reaction_holds_every_dose_reminder() -> None:
    extra = {"adverse_events": [{"code": "anaphylaxis", "date": "2026-02-01"}]}
    c, a = assess(pernicious_anaemia_case(MARCH, extra=extra))
    assert not [r for r in plan_reminders(a, c, RULES, as_of=MARCH) if r.kind in DOSE_KINDS]


def test_oral_regimen_gets_no_dose_reminders() -> None:
    document = pernicious_anaemia_case(MARCH)
    document["administrations"].append(dose(dt.date(2026, 2, 20), "self", route="oral"))
    document["prescription"] = {
        "product": "cyanocobalamin",
        "dose": 1000,
        "unit": "mcg",
        "route": "oral",
        "phase": "maintenance",
        "interval_days": 1,
        "start": "2026-02-20",
    }
    c, a = assess(document)
    assert not [r for r in plan_reminders(a, c, RULES, as_of=MARCH) if r.kind in DOSE_KINDS]


def test_review_is_booked_fourteen_days_before_it_is_due_with_a_plain_title() -> None:
    c, a = assess(pernicious_anaemia_case(MARCH))
    review = kinds(plan_reminders(a, c, RULES, as_of=MARCH))[BOOK_REVIEW]
    assert review.send_on == review.target - dt.timedelta(days=14)  # type: ignore[attr-defined]
    assert "_" not in review.title  # type: ignore[attr-defined]


def test_booking_day_already_passed_is_sent_on_as_of_while_the_dose_is_still_ahead() -> None:
    as_of = dt.date(2026, 4, 1)
    c, a = assess(pernicious_anaemia_case(as_of))
    assert kinds(plan_reminders(a, c, RULES, as_of=as_of))[BOOK_INJECTION].send_on == as_of  # type: ignore[attr-defined]


def test_no_plan_no_reminders() -> None:
    c = Case(as_of=MARCH)
    a = evaluate(c, K, as_of=MARCH)
    assert a.next_dose is None
    assert plan_reminders(a, c, RULES, as_of=MARCH) == ()


def test_reminder_file_needs_a_source_on_every_entry() -> None:
    from importlib import resources

    text = resources.files("b12plan.knowledge").joinpath("reminders.toml").read_text()
    broken = text.replace('lead_days = 5\nsource = "b12plan-local"\n', "lead_days = 5\n", 1)
    with pytest.raises(ReminderKnowledgeError, match=r"booking_lead\[1\]: missing 'source'"):
        parse_reminder_rules(broken)


def test_reminder_file_bands_must_not_leave_gaps() -> None:
    from importlib import resources

    text = resources.files("b12plan.knowledge").joinpath("reminders.toml").read_text()
    broken = text.replace("min_interval_days = 14", "min_interval_days = 15", 1)
    with pytest.raises(ReminderKnowledgeError, match="without gaps"):
        parse_reminder_rules(broken)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(case(), st.none() | st.integers(0, 60))
def test_same_inputs_same_plan(c: Case, lead: int | None) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    assert plan_reminders(a, c, RULES, as_of=c.as_of, lead_days=lead) == plan_reminders(
        a, c, RULES, as_of=c.as_of, lead_days=lead
    )


@SETTINGS
@given(case(), st.none() | st.integers(0, 60))
def test_never_a_dose_reminder_without_a_next_dose(c: Case, lead: int | None) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    plan = plan_reminders(a, c, RULES, as_of=c.as_of, lead_days=lead)
    if a.next_dose is None:
        assert not [r for r in plan if r.kind in DOSE_KINDS]
    for r in plan:
        if r.kind in DOSE_KINDS:
            assert a.next_dose is not None and r.target == a.next_dose.due


@SETTINGS
@given(case(), st.none() | st.integers(0, 60))
def test_never_planned_for_sending_before_as_of(c: Case, lead: int | None) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    for r in plan_reminders(a, c, RULES, as_of=c.as_of, lead_days=lead):
        assert r.send_on >= c.as_of
        assert r.kind == INJECTION_OVERDUE or r.send_on <= r.target
