"""The course of injections actually given: loading run, switch to maintenance, gaps.

Everything is anchored on the dates of valid injections (``validity.check_doses``), never on the
plan: a same-day duplicate, an antidote, a mcg/mg slip or a dose given during an allergic hold
does not count.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from b12plan.core.knowledge import Knowledge


@dataclass(frozen=True)
class Course:
    """Injection dates (one per day) split into the initial loading run and what followed."""

    dates: tuple[date, ...]
    loading_run: int  # doses before the first gap of maintenance length
    maintenance_gap_days: int

    @property
    def first(self) -> date | None:
        return self.dates[0] if self.dates else None

    @property
    def last(self) -> date | None:
        return self.dates[-1] if self.dates else None

    @property
    def moved_to_maintenance(self) -> bool:
        """A gap of maintenance length followed the loading run."""
        return self.loading_run < len(self.dates)

    @property
    def last_loading_dose(self) -> date | None:
        return self.dates[self.loading_run - 1] if self.loading_run else None

    @property
    def first_maintenance_dose(self) -> date | None:
        return self.dates[self.loading_run] if self.moved_to_maintenance else None

    def maintenance_gaps(self) -> tuple[tuple[date, date], ...]:
        """Consecutive pairs from the last loading dose on: the gaps of the maintenance phase."""
        tail = self.dates[max(self.loading_run - 1, 0) :]
        return tuple(itertools.pairwise(tail))

    def dose_before(self, day: date) -> date | None:
        """The last dose on or before ``day``."""
        found = None
        for d in self.dates:
            if d <= day:
                found = d
        return found


def build_course(dates: tuple[date, ...], knowledge: Knowledge) -> Course:
    """The loading run is the doses before the first gap of maintenance length (contract v1)."""
    gap_days = int(knowledge.timing("maintenance_gap_days"))
    run = 0
    for i, d in enumerate(dates):
        if i > 0 and (d - dates[i - 1]).days >= gap_days:
            break
        run += 1
    return Course(dates, run, gap_days)
