"""Reminder timings (``knowledge/reminders.toml``): loaded once, validated, frozen.

Stdlib only, so the pure plan can depend on the types. Errors name the file and the entry, like
the clinical knowledge loader (``b12plan.knowledge``), which this does not change.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

FILE = "reminders.toml"
ITEM_KINDS = ("blood_test", "review")


class ReminderKnowledgeError(ValueError):
    """``reminders.toml`` is invalid; the message names the entry and the problem."""


@dataclass(frozen=True)
class BookingLead:
    min_interval_days: int
    max_interval_days: int
    lead_days: int
    source: str


@dataclass(frozen=True)
class ItemText:
    item: str
    kind: str  # blood_test | review
    title: str
    source: str


@dataclass(frozen=True)
class ReminderRules:
    """Lead times and plain-language titles, with the version and sources they came from."""

    version: str
    booking_leads: tuple[BookingLead, ...]
    monitoring_lead_days: int
    patient_lead_min: int
    patient_lead_max: int
    overdue_days_after: int
    items: tuple[ItemText, ...]
    sources: tuple[tuple[str, str], ...]  # (setting, source)

    def booking_lead(self, interval_days: int) -> int:
        """Days before ``due`` to remind about booking, for a dose after this interval."""
        for band in self.booking_leads:
            if band.min_interval_days <= interval_days <= band.max_interval_days:
                return band.lead_days
        return self.booking_leads[-1].lead_days

    def item(self, code: str) -> ItemText:
        """The item's plain-language text; an unknown item still gets an honest title."""
        for entry in self.items:
            if entry.item == code:
                return entry
        return ItemText(code, "review", f"Check-up: {code.replace('_', ' ')}", "b12plan-local")


@cache
def load_reminder_rules() -> ReminderRules:
    """The shipped ``reminders.toml`` (cached: it is immutable)."""
    text = resources.files("b12plan.knowledge").joinpath(FILE).read_text(encoding="utf-8")
    return parse_reminder_rules(text)


def parse_reminder_rules(text: str) -> ReminderRules:
    """Validate the file's text; every entry needs a ``source``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReminderKnowledgeError(f"{FILE}: {exc}") from exc
    _keys(
        doc,
        "",
        required={"version", "reviewed_on", "source", "booking_lead", "monitoring_lead"},
        optional={"patient_lead", "overdue", "item"},
    )
    version = _str(doc, "version", "")
    if not isinstance(doc["reviewed_on"], dt.date):
        raise ReminderKnowledgeError(f"{FILE}: reviewed_on: expected a date")
    leads: list[BookingLead] = []
    for i, entry in enumerate(_list(doc, "booking_lead")):
        where = f"booking_lead[{i}]"
        _keys(
            entry,
            where,
            required={"min_interval_days", "max_interval_days", "lead_days", "source"},
            optional={"note"},
        )
        lead = BookingLead(
            _int(entry, "min_interval_days", where, low=1),
            _int(entry, "max_interval_days", where, low=1),
            _int(entry, "lead_days", where, low=0),
            _str(entry, "source", where),
        )
        if lead.max_interval_days < lead.min_interval_days:
            raise ReminderKnowledgeError(f"{FILE}: {where}: max_interval_days below min")
        leads.append(lead)
    leads.sort(key=lambda b: b.min_interval_days)
    expected = 1
    for band in leads:
        if band.min_interval_days != expected:
            raise ReminderKnowledgeError(
                f"{FILE}: booking_lead: intervals must run on from {expected} without gaps or"
                f" overlaps (a band starts at {band.min_interval_days})"
            )
        expected = band.max_interval_days + 1
    if not leads:
        raise ReminderKnowledgeError(f"{FILE}: booking_lead: at least one band is needed")
    monitoring = _table(doc, "monitoring_lead")
    _keys(monitoring, "monitoring_lead", required={"lead_days", "source"})
    patient = _table(
        doc, "patient_lead", {"min_days": 1, "max_days": 42, "source": "b12plan-local"}
    )
    _keys(patient, "patient_lead", required={"min_days", "max_days", "source"})
    overdue = _table(doc, "overdue", {"days_after": 1, "source": "b12plan-local"})
    _keys(overdue, "overdue", required={"days_after", "source"})
    low, high = (
        _int(patient, "min_days", "patient_lead", low=0),
        _int(patient, "max_days", "patient_lead", low=0),
    )
    if high < low:
        raise ReminderKnowledgeError(f"{FILE}: patient_lead: max_days below min_days")
    items: list[ItemText] = []
    for i, entry in enumerate(_list(doc, "item")):
        where = f"item[{i}]"
        _keys(entry, where, required={"item", "kind", "title", "source"})
        kind = _str(entry, "kind", where)
        if kind not in ITEM_KINDS:
            raise ReminderKnowledgeError(f"{FILE}: {where}.kind: expected one of {ITEM_KINDS}")
        items.append(
            ItemText(
                _str(entry, "item", where),
                kind,
                _str(entry, "title", where),
                _str(entry, "source", where),
            )
        )
    return ReminderRules(
        version=version,
        booking_leads=tuple(leads),
        monitoring_lead_days=_int(monitoring, "lead_days", "monitoring_lead", low=0),
        patient_lead_min=low,
        patient_lead_max=high,
        overdue_days_after=_int(overdue, "days_after", "overdue", low=1),
        items=tuple(items),
        sources=(
            ("monitoring_lead", _str(monitoring, "source", "monitoring_lead")),
            ("patient_lead", _str(patient, "source", "patient_lead")),
            ("overdue", _str(overdue, "source", "overdue")),
        ),
    )


def _keys(
    entry: dict[str, Any],
    where: str,
    *,
    required: set[str],
    optional: frozenset[str] | set[str] = frozenset(),
) -> None:
    prefix = f"{where}: " if where else ""
    for key in sorted(required - set(entry)):
        raise ReminderKnowledgeError(f"{FILE}: {prefix}missing {key!r}")
    for key in sorted(set(entry) - required - set(optional)):
        raise ReminderKnowledgeError(f"{FILE}: {prefix}unknown key {key!r}")


def _list(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ReminderKnowledgeError(f"{FILE}: {key}: expected a list of tables")
    return value


def _table(doc: dict[str, Any], key: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    value = doc.get(key, default)
    if not isinstance(value, dict):
        raise ReminderKnowledgeError(f"{FILE}: {key}: expected a table")
    return value


def _int(entry: dict[str, Any], key: str, where: str, *, low: int) -> int:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ReminderKnowledgeError(f"{FILE}: {where}.{key}: expected a whole number >= {low}")
    return value


def _str(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        label = f"{where}.{key}" if where else key
        raise ReminderKnowledgeError(f"{FILE}: {label}: expected non-empty text")
    return value
