"""The clock, injected: the composition root picks one; core never sees it.

``today()`` is the default evaluation date (``as_of``) and the date new records are checked
against; ``now()`` stamps the audit log. Tests use ``FixedClock``; demos may pin the day with
``PinnedDayClock`` (``B12PLAN_TODAY``) so their output is reproducible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware."""
        ...

    def today(self) -> dt.date:
        """The current calendar day where the service runs."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """Wall-clock time; ``today`` in the machine's local time zone (the clinic's day)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return dt.datetime.now().astimezone().date()


@dataclass(frozen=True)
class FixedClock:
    """Always the same instant."""

    instant: dt.datetime

    def __post_init__(self) -> None:
        if self.instant.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware instant")

    def now(self) -> dt.datetime:
        return self.instant

    def today(self) -> dt.date:
        return self.instant.date()


@dataclass(frozen=True)
class PinnedDayClock:
    """A fixed day for evaluations; real timestamps for the audit log."""

    day: dt.date
    base: Clock = field(default_factory=SystemClock)

    def now(self) -> dt.datetime:
        return self.base.now()

    def today(self) -> dt.date:
        return self.day
