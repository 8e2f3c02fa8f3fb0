"""Which recorded doses count: each administration valid or not, with its reasons (ICE-style).

Computed once per evaluation (contract v1.1 ``dose_validity``); loading counts only valid doses
and ``next_dose`` anchors on the last valid one. A dose that was given but should not count (a
same-day duplicate, the cyanide antidote, a mcg/mg slip, a dose given while injections were on hold
after an allergic reaction) keeps its record and says why it does not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Administration, AdverseEvent, Case, Decision

INVALIDATING = ("not_for_deficiency", "dose_implausible", "after_allergic_reaction")


@dataclass(frozen=True)
class DoseCheck:
    """One administration judged: valid or not, and why (reasons in a fixed order)."""

    given: Administration
    valid: bool
    reasons: tuple[str, ...]
    counts_as: str = "none"  # loading | maintenance | oral | none

    @property
    def oral(self) -> bool:
        return self.given.route == "oral"


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


def order_problem(product: str, route: str, dose: float, unit: str, knowledge: Knowledge) -> str:
    """ "not_for_deficiency", "dose_implausible", "route_not_recommended" or "" for one order.

    Not for deficiency: another use (Cyanokit 5 g IV) or a route with no deficiency range for the
    product (cyanocobalamin IV). Implausible: ``implausible_factor`` times outside the route's
    range (a mcg/mg slip). Route not recommended: an off-label route (hydroxocobalamin SC).
    """
    formulary = knowledge.formulary
    dose_mcg = formulary.to_mcg(dose, unit)
    if not_for_deficiency_use(product, route, dose_mcg, knowledge) is not None:
        return "not_for_deficiency"
    known = formulary.product(product)
    plausible = None if known is None else known.route_range(route)
    if plausible is None:
        return "not_for_deficiency"
    factor = formulary.implausible_factor
    if dose_mcg >= plausible.max_mcg * factor or dose_mcg <= plausible.min_mcg / factor:
        return "dose_implausible"
    return "route_not_recommended" if plausible.off_label else ""


def allergic_events(case: Case, knowledge: Knowledge) -> tuple[AdverseEvent, ...]:
    return tuple(
        e for e in case.adverse_events if knowledge.adverse_event(e.code).kind == "allergic"
    )


def clearance(event: AdverseEvent, decisions: tuple[Decision, ...], by: date) -> Decision | None:
    """The first rechallenge_cleared decision dated on/after ``event`` and on/before ``by``."""
    for d in decisions:
        if d.code == "rechallenge_cleared" and event.date <= d.date <= by:
            return d
    return None


def on_hold(case: Case, knowledge: Knowledge, day: date, *, strictly_after: bool) -> bool:
    """Injections are on hold on ``day``: an allergic reaction with no clearance since.

    For a dose, the reaction must come before the dose's day (``strictly_after``): a reaction on
    the day of a dose is that dose's reaction, and the dose itself was given in good faith.
    """
    for event in allergic_events(case, knowledge):
        began = event.date < day if strictly_after else event.date <= day
        if began and clearance(event, case.decisions, day) is None:
            return True
    return False


def check_doses(case: Case, knowledge: Knowledge) -> tuple[DoseCheck, ...]:
    """Every administration (already limited to ``as_of``) in date order, judged.

    Of the otherwise valid doses on one date, the first counts and the rest are
    ``duplicate_same_day`` (injections and oral doses separately: one of each a day is possible).
    ``counts_as`` is filled in later, once the course is known.
    """
    out: list[DoseCheck] = []
    counted: set[tuple[date, bool]] = set()
    for a in case.administrations:
        reasons: list[str] = []
        problem = order_problem(a.product, a.route, a.dose, a.unit, knowledge)
        if problem:
            reasons.append(problem)
        if a.route != "oral" and on_hold(case, knowledge, a.date, strictly_after=True):
            reasons.append("after_allergic_reaction")
        valid = not any(r in INVALIDATING for r in reasons)
        if valid:
            key = (a.date, a.route == "oral")
            if key in counted:
                reasons.append("duplicate_same_day")
                valid = False
            counted.add(key)
        out.append(DoseCheck(a, valid, tuple(reasons)))
    return tuple(out)
