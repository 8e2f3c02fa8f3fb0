"""The patient's calendar subscription: upcoming doses and check-ups that move with the plan.

Unlike the one-off download (``b12plan.ics.assessment_calendar``), a subscribed calendar is
fetched again and again, so its events must keep their identity when their dates change
(ADR 0053):

- A dose's UID is its place in the course (the 7th, 8th, ... injection), not its date: when a
  late dose is logged, the next dose keeps its UID and carries the new date.
- A check-up's UID is the monitoring item.
- ``SEQUENCE`` is the patient's record revision (the count of audited changes, which only
  grows), so a calendar app takes every changed event as newer than the copy it has.
- Items already past are left out, except the next dose while it is still to be given.
- Alarms at the patient's lead time (clinic-given: "book your appointment"; self-injection: on
  the morning of the day); check-ups at the lead time in ``reminders.toml``.
- A patient with no plan gets one note, today, saying why, instead of an empty calendar.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from b12plan.core.assessment import Assessment
from b12plan.core.model import Case
from b12plan.ics import Alarm, EventSpec, build_calendar, dose_description
from b12plan.reminders.knowledge import ReminderRules
from b12plan.reminders.plan import injections_on_hold, self_given

PRODID = "-//b12plan//B12 reminders feed//EN"
MORNING = dt.timedelta(hours=9)


def feed_calendar(
    assessment: Assessment,
    case: Case,
    rules: ReminderRules,
    *,
    patient_id: str,
    as_of: dt.date,
    revision: int,
    lead_days: int | None,
    clinic_name: str,
) -> bytes:
    """The feed's bytes: same inputs, same bytes (DTSTAMP is ``as_of``, not the clock)."""
    stamp = dt.datetime.combine(as_of, dt.time(0, 0), tzinfo=dt.UTC)
    events = dose_events(assessment, case, rules, patient_id, as_of, revision, lead_days)
    events += monitoring_events(assessment, rules, patient_id, as_of, revision)
    if not any(e.uid.startswith("dose-") for e in events):
        note = no_plan_note(assessment, case, clinic_name)
        if note is not None:
            events.append(
                EventSpec(_uid(patient_id, "note"), as_of, note[0], note[1], sequence=revision)
            )
    return build_calendar("B12 injections and check-ups", stamp, events, prodid=PRODID)


def dose_events(
    assessment: Assessment,
    case: Case,
    rules: ReminderRules,
    patient_id: str,
    as_of: dt.date,
    revision: int,
    lead_days: int | None,
) -> list[EventSpec]:
    window = assessment.next_dose
    regimen = assessment.regimen
    oral = regimen is not None and regimen.route == "oral"
    if window is None or oral or injections_on_hold(assessment):
        return []
    given = sum(1 for a in case.administrations if a.date <= as_of and a.route != "oral")
    by_self = self_given(case)
    if by_self:
        alarm = Alarm(MORNING, "B12 injection today")
    else:
        interval = regimen.maintenance_interval_days if regimen is not None else 1
        if assessment.schedule and assessment.schedule[0].phase == "loading":
            interval = 1
        lead = rules.booking_lead(interval)
        if lead_days is not None:
            lead = min(max(lead_days, rules.patient_lead_min), rules.patient_lead_max)
        alarm = Alarm(-dt.timedelta(days=lead), "Book your B12 injection appointment")
    out = []
    for index, dose in enumerate(assessment.schedule):
        if index > 0 and dose.date < as_of:
            continue
        number = given + 1 + index
        if index == 0:
            summary = "B12 injection due" if dose.date >= as_of else "B12 injection overdue"
        else:
            summary = "B12 injection (planned)"
        out.append(
            EventSpec(
                _uid(patient_id, f"dose-{number}", prefix="dose-"),
                max(dose.date, as_of),  # an overdue next dose shows today, still to do
                summary,
                dose_description(assessment, dose, first=index == 0),
                sequence=revision,
                alarms=(alarm,),
            )
        )
    return out


def monitoring_events(
    assessment: Assessment,
    rules: ReminderRules,
    patient_id: str,
    as_of: dt.date,
    revision: int,
) -> list[EventSpec]:
    out = []
    for item in assessment.monitoring:
        if item.due < as_of:
            continue
        text = rules.item(item.item)
        what = "blood test" if text.kind == "blood_test" else "review appointment"
        out.append(
            EventSpec(
                _uid(patient_id, f"monitoring-{item.item}"),
                item.due,
                text.title,
                f"{item.reason}\nBook your {what} with your clinic.\nSource: {item.source}",
                sequence=revision,
                alarms=(
                    Alarm(-dt.timedelta(days=rules.monitoring_lead_days), f"Book your {what}"),
                ),
            )
        )
    return out


def no_plan_note(assessment: Assessment, case: Case, clinic_name: str) -> tuple[str, str] | None:
    """Why there is nothing to put in the calendar, in plain words (None: there is a plan)."""
    if "PATIENT_DECEASED" in assessment.codes():
        return ("No B12 injections planned", "There are no more injections to plan.")
    if injections_on_hold(assessment):
        return (
            "B12 injections on hold: ask your clinic",
            "Your injections are on hold after an allergic reaction. Please do not have another"
            f" injection until {clinic_name} has talked to you about it.",
        )
    regimen = assessment.regimen
    rx = case.prescription
    if (regimen is not None and regimen.route == "oral") or (rx is not None and rx.route == "oral"):
        return (
            "B12 tablets: no injections to plan",
            "Your B12 is taken by mouth, so there are no injection dates in this calendar.",
        )
    if assessment.next_dose is None:
        return (
            "No B12 injection plan yet: ask your clinic",
            f"There is no injection plan for you in b12plan at the moment. Please ask"
            f" {clinic_name} what happens next.",
        )
    return None


def _uid(patient_id: str, what: str, *, prefix: str = "") -> str:
    digest = hashlib.sha256(f"{patient_id}\x1f{what}".encode()).hexdigest()[:32]
    return f"{prefix}{digest}@b12plan"
