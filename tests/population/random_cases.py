"""Seeded random cases that stress the rules' edges, for comparing the SQL with core.

Values are drawn around the knowledge base's own cut-offs (some exactly on them), doses include
the cyanide antidote, oral and mis-scaled ones, prescriptions take intervals inside and outside
each protocol's range, and records may fall after ``as_of``. One analyte may have several results
on one day (the worse counts, in core and SQL alike), but never two of the same value.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from b12plan.core.knowledge import Knowledge
from b12plan.core.model import (
    Administration,
    AdverseEvent,
    Case,
    Medication,
    Observation,
    Patient,
    Prescription,
    SymptomReport,
)

AS_OF = date(2026, 3, 1)

DOSES = {
    "hydroxocobalamin": [(1, "mg"), (1000, "mcg"), (5, "g"), (1000, "mg")],
    "cyanocobalamin": [(1000, "mcg"), (100, "mcg"), (1, "mg"), (50, "ug")],
    "methylcobalamin": [(1000, "mcg")],
}
ROUTES = ["IM", "IM", "IM", "SC", "IV", "oral"]


def random_case(rng: random.Random, k: Knowledge) -> Case:
    """One case as of ``AS_OF`` with a history of up to three years."""
    start = AS_OF - timedelta(days=rng.randint(0, 3 * 365))

    def day(after: date = start, span: int = 900) -> date:
        return after + timedelta(days=rng.randint(-60, span))

    causes = tuple(rng.sample([c.code for c in k.causes], rng.choice([0, 1, 1, 2, 3])))
    product = rng.choice(["hydroxocobalamin", "hydroxocobalamin", "cyanocobalamin"])
    admins: list[Administration] = []
    current = start
    loading = rng.choice([0, 1, 2, 3, 5, 6, 7, 11, 12, 15])
    dose, unit = rng.choice(DOSES[product][:2])
    for i in range(rng.randint(0, 30)):
        admins.append(Administration(current, product, dose, unit, "IM", given_by="clinic"))
        gap = (
            rng.choice([1, 2, 3])
            if i + 1 < loading
            else rng.choice([7, 20, 21, 28, 30, 45, 56, 60, 84, 91, 100, 130, 182, 250])
        )
        current += timedelta(days=gap)
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # odd doses: oral, IV antidote, mis-scaled
        other = rng.choice(list(DOSES))
        d, u = rng.choice(DOSES[other])
        admins.append(Administration(day(), other, d, u, rng.choice(ROUTES)))

    observations: list[Observation] = []
    used: set[tuple[str, date, float]] = set()
    for _ in range(rng.randint(0, 9)):
        analyte = rng.choice(k.analytes)
        unit_entry = rng.choice(analyte.units)
        cut = next(
            (
                c
                for c in (analyte.deficient_below, analyte.normal_above, analyte.raised_above)
                if c is not None
            ),
            None,
        )
        if analyte.code == "haemoglobin":
            canonical = rng.choice([75.0, 110.0, 119.0, 120.0, 125.0, 130.0, 145.0])
        elif cut is None:
            canonical = rng.uniform(1, 10)
        else:
            canonical = cut * rng.choice([0.3, 0.8, 0.99, 1.0, 1.01, 1.5, 2.5, 5.0])
            if analyte.code in ("b12_total", "b12_active") and rng.random() < 0.2:
                canonical = analyte.normal_above or canonical
        when = rng.choice([day(), start - timedelta(days=rng.randint(0, 30)), start])
        if (analyte.code, when, canonical) in used:
            continue
        used.add((analyte.code, when, canonical))
        low = high = None
        if rng.random() < 0.1 and analyte.deficient_below is not None:
            low = round(analyte.deficient_below * rng.choice([0.8, 1.2]) / unit_entry.factor, 2)
        if rng.random() < 0.1 and analyte.raised_above is not None:
            high = round(analyte.raised_above * rng.choice([0.8, 1.2]) / unit_entry.factor, 3)
        if analyte.code == "haemoglobin" and rng.random() < 0.1:
            low = round(rng.choice([115.0, 135.0]) / unit_entry.factor, 1)
        observations.append(
            Observation(
                when,
                analyte.code,
                round(canonical / unit_entry.factor, 2),
                unit_entry.symbol,
                low,
                high,
            )
        )

    symptoms = []
    codes = rng.sample([s.code for s in k.symptoms], rng.choice([0, 1, 1, 2]))
    for code in codes:
        for when in sorted({day() for _ in range(rng.randint(1, 4))} | {start}):
            symptoms.append(SymptomReport(when, code, rng.choice(k.symptom_statuses)))

    prescription = None
    if rng.random() < 0.7:
        rx_dose, rx_unit = rng.choice(DOSES[product][:2])
        rx_start = rng.choice([start, day()])
        prescription = Prescription(
            product,
            rx_dose,
            rx_unit,
            "IM",
            rng.choice(["loading", "maintenance"]),
            rng.choice([2, 28, 30, 31, 42, 50, 56, 60, 62, 70, 84, 91, 120, 182]),
            rx_start,
            rng.choice([None, None, None, rx_start + timedelta(days=rng.randint(0, 500))]),
        )
    medications = [
        Medication(
            day(),
            rng.choice(["folic_acid", "folic_acid", "oral_b12", "metformin"]),
            rng.choice([None, AS_OF - timedelta(days=rng.randint(-30, 30))]),
        )
        for _ in range(rng.choice([0, 0, 1, 2]))
    ]
    medications = [m for m in medications if m.end is None or m.end >= m.start]
    events = [
        AdverseEvent(day(), rng.choice([e.code for e in k.adverse_events]))
        for _ in range(rng.choice([0, 0, 0, 1]))
    ]
    return Case(
        as_of=AS_OF,
        jurisdiction=rng.choice(["GB", "GB", "US"]),
        patient=Patient("p", rng.choice(["female", "male", "other", None]), date(1950, 1, 1)),
        causes=causes,
        symptoms=tuple(symptoms),
        observations=tuple(observations),
        administrations=tuple(admins),
        prescription=prescription,
        medications=tuple(medications),
        adverse_events=tuple(events),
    )
