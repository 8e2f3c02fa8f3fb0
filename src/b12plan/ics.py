"""An assessment's planned doses and monitoring as an iCalendar file.

Deterministic on purpose: the same assessment gives the same bytes (UIDs come from the patient,
the date and the kind of event; DTSTAMP is the evaluation date, never the clock), so a re-export
updates events in a calendar instead of duplicating them, and files can be compared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from icalendar import Alarm as Alarm_
from icalendar import Calendar, Event

from b12plan.core.assessment import Assessment, MonitoringItem, ScheduledDose

PRODID = "-//b12plan//B12 injection schedule//EN"


@dataclass(frozen=True)
class Alarm:
    """A display alarm relative to the event's start (negative: before it)."""

    offset: dt.timedelta
    description: str


@dataclass(frozen=True)
class EventSpec:
    """One all-day event; ``sequence`` (RFC 5545) rises whenever a published event changes."""

    uid: str
    day: dt.date
    summary: str
    description: str
    sequence: int | None = None
    alarms: tuple[Alarm, ...] = ()


def build_calendar(
    name: str, stamp: dt.datetime, events: list[EventSpec], *, prodid: str = PRODID
) -> bytes:
    """The one place events become iCalendar (the static download and the feed both use it)."""
    calendar = Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for spec in sorted(events, key=lambda e: (e.day, e.uid)):
        event = _event(spec.uid, stamp, spec.day, spec.summary, spec.description)
        if spec.sequence is not None:
            event.add("sequence", spec.sequence)
        for alarm in spec.alarms:
            valarm = Alarm_()
            valarm.add("action", "DISPLAY")
            valarm.add("description", alarm.description)
            valarm.add("trigger", alarm.offset)
            event.add_component(valarm)
        calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


def assessment_calendar(assessment: Assessment, *, patient_id: str | None) -> bytes:
    """One all-day event per scheduled dose and per monitoring item, in date order."""
    stamp = dt.datetime.combine(assessment.as_of, dt.time(0, 0), tzinfo=dt.UTC)
    owner = patient_id or "unknown-patient"
    events: list[EventSpec] = []
    for index, dose in enumerate(assessment.schedule):
        events.append(
            EventSpec(
                _uid(owner, dose.date, f"dose-{dose.phase}"),
                dose.date,
                _dose_summary(assessment, dose),
                dose_description(assessment, dose, first=index == 0),
            )
        )
    for item in assessment.monitoring:
        events.append(
            EventSpec(
                _uid(owner, item.due, f"monitoring-{item.item}"),
                item.due,
                _monitoring_summary(item),
                f"{item.reason}\nSource: {item.source}",
            )
        )
    return build_calendar(f"B12 injections: {owner}", stamp, events)


def _uid(owner: str, day: dt.date, kind: str) -> str:
    digest = hashlib.sha256(f"{owner}\x1f{day.isoformat()}\x1f{kind}".encode()).hexdigest()
    return f"{digest[:32]}@b12plan"


def _event(uid: str, stamp: dt.datetime, day: dt.date, summary: str, description: str) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", day)
    event.add("dtend", day + dt.timedelta(days=1))
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "TRANSPARENT")
    return event


def _dose_summary(assessment: Assessment, dose: ScheduledDose) -> str:
    regimen = assessment.regimen
    amount = f"{_n(dose.dose)} {dose.unit}"
    if regimen is None:
        return f"B12 injection: {amount} ({dose.phase})"
    return f"B12 injection: {regimen.product} {amount} {regimen.route} ({dose.phase})"


def dose_description(assessment: Assessment, dose: ScheduledDose, *, first: bool) -> str:
    lines: list[str] = []
    window = assessment.next_dose
    if first and window is not None:
        lines.append(
            f"Next dose window: earliest {window.earliest.isoformat()}, due"
            f" {window.due.isoformat()}, overdue after {window.overdue_after.isoformat()}."
        )
    else:
        lines.append(
            f"Planned {dose.phase} dose. Later dates move with the date the next dose is given."
        )
    if assessment.regimen is not None:
        lines.append(f"Protocol: {assessment.regimen.protocol_id}")
        lines.append(f"Source: {assessment.regimen.source}")
    lines.append(f"Planned on {assessment.as_of.isoformat()} (b12plan).")
    return "\n".join(lines)


def _monitoring_summary(item: MonitoringItem) -> str:
    return f"B12 follow-up: {item.item.replace('_', ' ')}"


def _n(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
