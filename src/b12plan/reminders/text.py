"""What a reminder says, in the patient's language: subject, plain text and HTML.

Dates are written out in the patient's language (weekday, day, month, year) so "due 2026-04-10"
is never misread as October. Only the dates are translated so far; the sentences are English
(ADR 0052). HTML is built from escaped text only: no inline styles or scripts.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any

LANGUAGES = ("en", "de", "fr", "es", "cy")

_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre"
    " diciembre",
    "cy": "Ionawr Chwefror Mawrth Ebrill Mai Mehefin Gorffennaf Awst Medi Hydref Tachwedd Rhagfyr",
}
_WEEKDAYS = {
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "es": "lunes martes miércoles jueves viernes sábado domingo",
    "cy": "dydd_Llun dydd_Mawrth dydd_Mercher dydd_Iau dydd_Gwener dydd_Sadwrn dydd_Sul",
}


def format_date(day: dt.date, language: str) -> str:
    """``Friday 10 April 2026`` / ``Freitag, 10. April 2026`` / ``vendredi 10 avril 2026``."""
    lang = language if language in _MONTHS else "en"
    month = _MONTHS[lang].split()[day.month - 1]
    weekday = _WEEKDAYS[lang].split()[day.weekday()].replace("_", " ")
    if lang == "de":
        return f"{weekday}, {day.day}. {month} {day.year}"
    if lang == "es":
        return f"{weekday}, {day.day} de {month} de {day.year}"
    return f"{weekday} {day.day} {month} {day.year}"


@dataclass(frozen=True)
class Message:
    subject: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs) + "\n"

    @property
    def html(self) -> str:
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in self.paragraphs)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.subject)}</title></head>\n<body>\n{body}\n</body></html>\n"
        )


def compose(
    *,
    kind: str,
    target: dt.date,
    payload: dict[str, Any],
    recipient_role: str,
    patient_name: str,
    patient_id: str,
    clinic_name: str,
    language: str,
    settings_url: str | None,
) -> Message:
    """The message for one outbox row (the row's payload holds the plan's details)."""

    def d(day: dt.date | str) -> str:
        value = dt.date.fromisoformat(day) if isinstance(day, str) else day
        return format_date(value, language)

    window = payload.get("window") or {}
    title = str(payload.get("title") or "B12 reminder")
    footer = f"Sent by b12plan for {clinic_name}."
    if recipient_role == "clinic":
        subject = f"Overdue B12 injection: {patient_name}"
        lines = (
            f"{patient_name} ({patient_id}) has no B12 injection recorded since the dose due on"
            f" {d(target)}; it counted as overdue after {d(window.get('overdue_after', target))}.",
            "Please contact the patient, or record the dose if it was given elsewhere.",
            footer,
        )
        return Message(subject, lines)
    greeting = f"Hello {patient_name}," if recipient_role != "carer" else "Hello,"
    if kind == "book_injection":
        body = (
            f"Your next B12 injection is due on {d(target)}. Please book an appointment with"
            f" {clinic_name} now. You can have it from {d(window['earliest'])}; after"
            f" {d(window['overdue_after'])} it counts as overdue."
        )
        subject = f"{title}: due {d(target)}"
    elif kind == "injection_due":
        if payload.get("self_given"):
            body = f"Your B12 injection is due today, {d(target)}. Remember to log it once given."
        else:
            body = (
                f"Your B12 injection can be given from today and is due on {d(target)}. If you"
                f" have no appointment yet, please contact {clinic_name}."
            )
        subject = f"{title}: {d(target)}"
    elif kind == "injection_overdue":
        body = (
            f"Your B12 injection was due on {d(target)} and no dose has been recorded. Please"
            f" contact {clinic_name} to have it as soon as possible. Do not stop injections"
            " without talking to your clinic: the treatment is usually lifelong."
        )
        subject = f"{title} (due {d(target)})"
    else:
        what = "blood test" if kind == "book_blood_test" else "appointment"
        body = f"{title}. It is due on {d(target)}. Please book your {what} with {clinic_name} now."
        subject = f"{title}: due {d(target)}"
    paragraphs = [greeting, body]
    if recipient_role == "carer":
        paragraphs.insert(1, f"This reminder is about {patient_name}, whom you care for.")
        body = body.replace("Your ", f"{patient_name}'s ", 1)
        paragraphs[2] = body
    if settings_url:
        paragraphs.append(f"To change or stop these reminders: {settings_url}")
    paragraphs.append(footer)
    return Message(subject, tuple(paragraphs))
