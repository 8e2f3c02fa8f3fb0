"""Small formatting helpers shared by the pages, the answers and the chart table."""

from __future__ import annotations

from datetime import date


def human_date(value: date | None) -> str:
    """``Tue 3 Mar 2026``: the weekday helps people book; ISO stays in ``datetime`` attributes."""
    if value is None:
        return "—"
    return f"{value.strftime('%a')} {value.day} {value.strftime('%b %Y')}"


def num(value: float | None) -> str:
    """1.0 reads as 1, 0.25 as 0.25."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def weeks(days: int) -> str:
    """A day count in weeks, as people say intervals (56 days: 8 weeks)."""
    whole, rest = divmod(days, 7)
    return f"{whole} weeks" if rest == 0 else f"{days / 7:.1f} weeks"
