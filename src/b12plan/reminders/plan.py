"""The reminder plan: which reminders a patient (and their clinic) should get, and on which day.

Pure: derived from the core's ``Assessment`` and the ``Case`` it came from, the reminder timings
(``reminders.toml``) and ``as_of``, the day the plan is made for. No clock, no I/O; the same
inputs give the same plan. The outbox (``reminders.outbox``) turns a plan into rows to send.

Rules (timings are data, see ``knowledge/reminders.toml``):

- No dose reminder without a ``next_dose`` (contract v1.1 gives ``null`` for the allergic hold,
  oral regimens and deceased patients), for an oral regimen, or while an allergic reaction holds
  injections (also with a v1 core that still plans doses after one).
- Clinic-given doses: "book your injection" ``lead`` days before ``due`` (by interval band, or
  the patient's own choice), "injection due" when the window opens (``earliest``).
  Self-injection (the last dose or the order was given by the patient or a carer): "injection
  due" on the day it is due, and no booking reminder.
- "Overdue" the day after ``overdue_after``, to the patient and to the clinic.
- Each monitoring item still ahead: "book your blood test" (or a review appointment) ``lead``
  days before it is due.
- Nothing is ever planned for sending before ``as_of``: a reminder whose day has passed but whose
  target is still ahead goes out on ``as_of``; one whose target has passed is dropped.
- Once a dose is recorded the assessment's ``next_dose`` moves on, so reminders about the dose it
  satisfied are no longer in the plan (the outbox cancels rows that are not).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from b12plan.core.assessment import Assessment, DoseWindow
from b12plan.core.model import Case
from b12plan.reminders.knowledge import ReminderRules

BOOK_INJECTION = "book_injection"
INJECTION_DUE = "injection_due"
INJECTION_OVERDUE = "injection_overdue"
BOOK_BLOOD_TEST = "book_blood_test"
BOOK_REVIEW = "book_review"
KINDS = (BOOK_INJECTION, INJECTION_DUE, INJECTION_OVERDUE, BOOK_BLOOD_TEST, BOOK_REVIEW)
DOSE_KINDS = (BOOK_INJECTION, INJECTION_DUE, INJECTION_OVERDUE)

PATIENT = "patient"
CLINIC = "clinic"

_SELF_GIVEN = ("self", "carer")


@dataclass(frozen=True)
class Reminder:
    """One reminder: what it is about (``kind`` and ``target`` date), when to send, to whom."""

    kind: str
    target: dt.date  # the due date of the dose or monitoring item it is about
    send_on: dt.date
    audience: tuple[str, ...]  # PATIENT, CLINIC
    title: str  # plain language, for a subject line or a calendar event
    item: str | None = None  # the monitoring item, for blood tests and reviews
    window: DoseWindow | None = None
    lead_days: int | None = None
    self_given: bool = False
    source: str = "b12plan-local"

    @property
    def key(self) -> tuple[str, str, dt.date]:
        """What makes a reminder the same one on a later run: kind, item, target date."""
        return (self.kind, self.item or "", self.target)


def plan_reminders(
    assessment: Assessment,
    case: Case,
    rules: ReminderRules,
    *,
    as_of: dt.date,
    lead_days: int | None = None,
) -> tuple[Reminder, ...]:
    """Every reminder still to send on or after ``as_of``, sorted by send day, kind, item.

    ``lead_days``: the patient's chosen booking lead time (clamped to the bounds in the data);
    ``None`` uses the interval band's lead time.
    """
    if "PATIENT_DECEASED" in assessment.codes():
        return ()
    out = list(_dose_reminders(assessment, case, rules, as_of, lead_days))
    out.extend(_monitoring_reminders(assessment, rules, as_of))
    return tuple(sorted(out, key=lambda r: (r.send_on, KINDS.index(r.kind), r.item or "")))


def injections_on_hold(assessment: Assessment) -> bool:
    """An allergic reaction holds injections unless the core says the hold is lifted.

    Contract v1.1 puts ``injections_on_hold`` in the finding's evidence; a v1 core does not, and
    still plans doses after a reaction, so a missing flag counts as a hold (the safe reading).
    """
    for finding in assessment.findings:
        if finding.code == "ALLERGIC_REACTION":
            return bool(dict(finding.evidence).get("injections_on_hold", True))
    return False


def self_given(case: Case) -> bool:
    """Doses given by the patient or a carer: the order says so, or else the latest dose did."""
    rx = case.prescription
    if rx is not None and rx.given_by is not None:
        return rx.given_by in _SELF_GIVEN
    doses = [a for a in case.administrations if a.date <= case.as_of and a.route != "oral"]
    return bool(doses) and doses[-1].given_by in _SELF_GIVEN


def _oral(assessment: Assessment, case: Case) -> bool:
    regimen, rx = assessment.regimen, case.prescription
    return (regimen is not None and regimen.route == "oral") or (
        rx is not None and rx.route == "oral"
    )


def _dose_reminders(
    assessment: Assessment,
    case: Case,
    rules: ReminderRules,
    as_of: dt.date,
    chosen_lead: int | None,
) -> list[Reminder]:
    window = assessment.next_dose
    if window is None or _oral(assessment, case) or injections_on_hold(assessment):
        return []
    source = rules.booking_leads[0].source
    by_self = self_given(case)
    out: list[Reminder] = []
    if not by_self:
        interval = _interval(assessment, case, window)
        band = next(
            (
                b
                for b in rules.booking_leads
                if b.min_interval_days <= interval <= b.max_interval_days
            ),
            rules.booking_leads[-1],
        )
        lead = band.lead_days
        if chosen_lead is not None:
            lead = min(max(chosen_lead, rules.patient_lead_min), rules.patient_lead_max)
        send = _not_before(window.due - dt.timedelta(days=lead), as_of, last=window.due - _DAY)
        if send is not None:
            out.append(
                Reminder(
                    BOOK_INJECTION,
                    window.due,
                    send,
                    (PATIENT,),
                    "Book your B12 injection appointment",
                    window=window,
                    lead_days=lead,
                    source=band.source,
                )
            )
        opens = _not_before(window.earliest, as_of, last=window.due)
    else:
        opens = window.due if window.due >= as_of else None
    if opens is not None:
        out.append(
            Reminder(
                INJECTION_DUE,
                window.due,
                opens,
                (PATIENT,),
                "Your B12 injection is due" if not by_self else "Your B12 injection is due today",
                window=window,
                self_given=by_self,
                source=source,
            )
        )
    overdue_day = window.overdue_after + dt.timedelta(days=rules.overdue_days_after)
    out.append(
        Reminder(
            INJECTION_OVERDUE,
            window.due,
            max(overdue_day, as_of),
            (PATIENT, CLINIC),
            "Your B12 injection is overdue",
            window=window,
            self_given=by_self,
            source=dict(rules.sources)["overdue"],
        )
    )
    return out


def _monitoring_reminders(
    assessment: Assessment, rules: ReminderRules, as_of: dt.date
) -> list[Reminder]:
    out = []
    lead = rules.monitoring_lead_days
    for item in assessment.monitoring:
        send = _not_before(item.due - dt.timedelta(days=lead), as_of, last=item.due)
        if send is None:
            continue
        text = rules.item(item.item)
        out.append(
            Reminder(
                BOOK_BLOOD_TEST if text.kind == "blood_test" else BOOK_REVIEW,
                item.due,
                send,
                (PATIENT,),
                text.title,
                item=item.item,
                lead_days=lead,
                source=text.source,
            )
        )
    return out


def _interval(assessment: Assessment, case: Case, window: DoseWindow) -> int:
    """Days between the previous dose and the next: the band that sets the booking lead."""
    schedule = assessment.schedule
    regimen = assessment.regimen
    if schedule and schedule[0].phase == "maintenance" and regimen is not None:
        return regimen.maintenance_interval_days
    given = [a.date for a in case.administrations if a.date <= case.as_of]
    if given:
        return max(1, (window.due - given[-1]).days)
    if len(schedule) >= 2:
        return max(1, (schedule[1].date - schedule[0].date).days)
    return regimen.maintenance_interval_days if regimen is not None else 1


def _not_before(day: dt.date, as_of: dt.date, *, last: dt.date) -> dt.date | None:
    """``day``, or ``as_of`` if that has passed; ``None`` once even ``last`` has passed."""
    send = max(day, as_of)
    return send if send <= last else None


_DAY = dt.timedelta(days=1)
