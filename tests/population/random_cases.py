"""Seeded random cases that stress the rules' edges, for comparing the SQL with core.

Values are drawn around the knowledge base's own cut-offs (some exactly on them, in every unit,
some outside the plausible range), doses include the cyanide antidote, oral, mis-scaled and
same-day duplicate ones, prescriptions take intervals inside and outside each protocol's range
(some oral), and records may fall after ``as_of``. One analyte may have several results on one day
(the worse counts, in core and SQL alike), but never two of the same value. Contract v1.1 adds
symptom reporters (patients' and carers' statuses, same-day conflicts), decisions (neurological
loading complete, rechallenge cleared), prior treatment, deceased dates, children, breastfeeding,
risk-factor medications and rashes soon after a dose.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from b12plan.core.knowledge import Knowledge
from b12plan.core.model import (
    Administration,
    AdverseEvent,
    Case,
    Decision,
    Medication,
    Observation,
    Patient,
    Prescription,
    PriorTreatment,
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
        if rng.random() < 0.03:  # charted twice
            admins.append(Administration(current, product, dose, unit, "IM", given_by="self"))
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
            if rng.random() < 0.1:  # a g/dL figure filed as g/L: implausible
                canonical = rng.choice([12.0, 13.6, 30.0])
        elif cut is None:
            canonical = rng.uniform(1, 10)
        else:
            canonical = cut * rng.choice([0.3, 0.8, 0.99, 1.0, 1.01, 1.5, 2.5, 5.0])
            if analyte.code in ("b12_total", "b12_active") and rng.random() < 0.2:
                canonical = analyte.normal_above or canonical
        if rng.random() < 0.05:  # outside or on the edge of the plausible range
            edge = rng.choice(analyte.plausible) if analyte.plausible else None
            if edge is not None:
                unit_entry = next(u for u in analyte.units if u.symbol == edge.unit)
                shown = rng.choice([edge.low, edge.high, edge.low / 2, edge.high * 2])
                canonical = shown * unit_entry.factor
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
            reporter = rng.choice(["clinician", "clinician", "patient", "carer"])
            symptoms.append(SymptomReport(when, code, rng.choice(k.symptom_statuses), reporter))
            if rng.random() < 0.1:  # another status the same day, from someone else
                other = "patient" if reporter == "clinician" else "clinician"
                symptoms.append(SymptomReport(when, code, rng.choice(k.symptom_statuses), other))

    prescription = None
    if rng.random() < 0.7:
        rx_dose, rx_unit = rng.choice(DOSES[product][:2])
        rx_start = rng.choice([start, day()])
        oral = rng.random() < 0.12
        prescription = Prescription(
            "cyanocobalamin" if oral else product,
            rng.choice([50, 1000, 2000]) if oral else rx_dose,
            "mcg" if oral else rx_unit,
            "oral" if oral else "IM",
            "maintenance" if oral else rng.choice(["loading", "maintenance"]),
            1 if oral else rng.choice([2, 28, 30, 31, 42, 50, 56, 60, 62, 70, 84, 91, 120, 182]),
            rx_start,
            rng.choice([None, None, None, rx_start + timedelta(days=rng.randint(0, 500))]),
        )
    medications = [
        Medication(
            day(),
            rng.choice(
                ["folic_acid", "folic_acid", "oral_b12", "metformin", "ppi", "nitrous_oxide"]
            ),
            rng.choice([None, AS_OF - timedelta(days=rng.randint(-30, 30))]),
        )
        for _ in range(rng.choice([0, 0, 1, 2]))
    ]
    medications = [m for m in medications if m.end is None or m.end >= m.start]
    events = [
        AdverseEvent(day(), rng.choice([e.code for e in k.adverse_events]))
        for _ in range(rng.choice([0, 0, 0, 1]))
    ]
    if admins and rng.random() < 0.1:  # a skin reaction or allergy within days of a dose
        after = rng.choice(admins).date + timedelta(days=rng.choice([0, 1, 2, 3]))
        events.append(AdverseEvent(after, rng.choice(["rash", "itching", "allergic_reaction"])))
    decisions = []
    for e in events:
        if k.adverse_event(e.code).kind == "allergic" and rng.random() < 0.5:
            when = e.date + timedelta(days=rng.choice([0, 5, 30]))
            decisions.append(Decision(when, "rechallenge_cleared", "Dr A", "allergy review"))
    if admins and rng.random() < 0.15:
        when = admins[0].date + timedelta(days=rng.choice([-1, 0, 10, 21, 30, 60]))
        decisions.append(Decision(when, "neuro_loading_complete", "Dr B", "no further change"))
    prior = None
    if rng.random() < 0.08:
        prior = PriorTreatment(
            start - timedelta(days=rng.choice([1, 100, 700])), rng.random() < 0.6
        )
    birth = date(1950, 1, 1)
    if rng.random() < 0.05:  # a child, or just 16
        birth = AS_OF - timedelta(days=rng.choice([200, 3000, 16 * 365 + 3, 16 * 365 + 5]))
    deceased = None
    if rng.random() < 0.04:
        deceased = AS_OF + timedelta(days=rng.choice([-100, 0, 1]))
    return Case(
        as_of=AS_OF,
        jurisdiction=rng.choice(["GB", "GB", "US"]),
        patient=Patient(
            "p", rng.choice(["female", "male", "other", None]), birth, deceased_date=deceased
        ),
        causes=causes,
        symptoms=tuple(symptoms),
        observations=tuple(observations),
        administrations=tuple(admins),
        prescription=prescription,
        medications=tuple(medications),
        adverse_events=tuple(events),
        decisions=tuple(decisions),
        prior_treatment=prior,
    )
