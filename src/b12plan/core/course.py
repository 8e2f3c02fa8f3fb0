"""The course of injections actually given: loading run, switch to maintenance, gaps.

Everything is anchored on actual administration dates, never on the plan.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Administration, Case


def not_for_deficiency_use(
    admin_product: str, route: str, dose_mcg: float, knowledge: Knowledge
) -> str | None:
    """The other use of a product/route/dose (e.g. the cyanide antidote), if it has one."""
    product = knowledge.formulary.product(admin_product)
    if product is None:
        return None
    for other in product.not_for_deficiency:
        if other.route == route and dose_mcg >= other.min_mcg:
            return other.use
    return None


def injections(case: Case, knowledge: Knowledge) -> tuple[Administration, ...]:
    """Parenteral deficiency doses: oral doses and non-deficiency products are not the course."""
    out = []
    for a in case.administrations:
        if a.route == "oral":
            continue
        dose_mcg = knowledge.formulary.to_mcg(a.dose, a.unit)
        if not_for_deficiency_use(a.product, a.route, dose_mcg, knowledge) is not None:
            continue
        out.append(a)
    return tuple(out)


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


def build_course(case: Case, knowledge: Knowledge) -> Course:
    """Same-day duplicates count once: one dose a day is the most any protocol gives."""
    dates = tuple(sorted({a.date for a in injections(case, knowledge)}))
    gap_days = int(knowledge.timing("maintenance_gap_days"))
    run = 0
    for i, d in enumerate(dates):
        if i > 0 and (d - dates[i - 1]).days >= gap_days:
            break
        run += 1
    return Course(dates, run, gap_days)
