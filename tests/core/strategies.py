"""Hypothesis strategies for valid core cases built from the knowledge base's vocabulary."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import strategies as st

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
from b12plan.knowledge import load_knowledge

K = load_knowledge()
START = date(2024, 1, 1)
SPAN_DAYS = 900

days = st.integers(min_value=0, max_value=SPAN_DAYS)
day = days.map(lambda n: START + timedelta(days=n))

symptom = st.builds(
    SymptomReport,
    date=day,
    code=st.sampled_from([s.code for s in K.symptoms]),
    status=st.sampled_from(list(K.symptom_statuses)),
    reporter=st.sampled_from([r.code for r in K.reporters]),
)
decision = st.builds(
    Decision,
    date=day,
    code=st.sampled_from([d.code for d in K.decisions]),
    by=st.just("Dr Test"),
    reason=st.just("recorded in a test"),
)


@st.composite
def observation(draw: st.DrawFn) -> Observation:
    analyte = draw(st.sampled_from(K.analytes))
    unit = draw(st.sampled_from(analyte.units))
    value = draw(st.floats(min_value=0, max_value=2000, allow_nan=False, allow_infinity=False))
    return Observation(date=draw(day), code=analyte.code, value=value, unit=unit.symbol)


DOSES = [(1, "mg"), (1000, "mcg"), (100, "mcg"), (5, "g"), (1000, "mg"), (0.5, "mg"), (50, "ug")]
ROUTES = ["IM", "SC", "IV", "oral"]
PRODUCTS = [p.id for p in K.formulary.products]


@st.composite
def administration(draw: st.DrawFn) -> Administration:
    dose, unit = draw(st.sampled_from(DOSES))
    return Administration(
        date=draw(day),
        product=draw(st.sampled_from(PRODUCTS)),
        dose=dose,
        unit=unit,
        route=draw(st.sampled_from(ROUTES)),
    )


@st.composite
def prescription(draw: st.DrawFn) -> Prescription:
    dose, unit = draw(st.sampled_from(DOSES))
    start = draw(day)
    end = draw(st.none() | st.integers(0, 400).map(lambda n: start + timedelta(days=n)))
    return Prescription(
        product=draw(st.sampled_from(PRODUCTS)),
        dose=dose,
        unit=unit,
        route=draw(st.sampled_from(ROUTES)),
        phase=draw(st.sampled_from(["loading", "maintenance"])),
        interval_days=draw(st.integers(1, 200)),
        start=start,
        end=end,
    )


@st.composite
def dosing_course(draw: st.DrawFn) -> tuple[Administration, ...]:
    """A realistic-looking series: a start and gaps drawn from loading and maintenance spacing."""
    n = draw(st.integers(0, 25))
    product = draw(st.sampled_from(["hydroxocobalamin", "cyanocobalamin"]))
    dose, unit = (
        (1, "mg")
        if product == "hydroxocobalamin"
        else draw(st.sampled_from([(1000, "mcg"), (100, "mcg")]))
    )
    current = draw(day)
    out = []
    route = draw(st.sampled_from(["IM", "IM", "IM", "oral"]))
    for _ in range(n):
        out.append(Administration(current, product, dose, unit, route))
        current += timedelta(days=draw(st.sampled_from([1, 2, 3, 7, 28, 30, 56, 84, 90, 200])))
    return tuple(out)


@st.composite
def case(draw: st.DrawFn) -> Case:
    as_of = draw(day)
    birth = draw(st.sampled_from([date(1950, 1, 1), date(1990, 6, 1), date(2012, 3, 1)]))
    return Case(
        as_of=as_of,
        jurisdiction=draw(st.sampled_from(["GB", "US"])),
        patient=Patient(
            id="p",
            sex=draw(st.sampled_from(["female", "male", None])),
            birth_date=birth,
            deceased_date=draw(st.none() | st.none() | st.none() | day),
        ),
        decisions=tuple(draw(st.lists(decision, max_size=2))),
        prior_treatment=draw(
            st.none()
            | st.none()
            | st.builds(PriorTreatment, since=day, loading_completed=st.booleans())
        ),
        causes=tuple(draw(st.lists(st.sampled_from([c.code for c in K.causes]), max_size=3))),
        symptoms=tuple(draw(st.lists(symptom, max_size=6))),
        observations=tuple(draw(st.lists(observation(), max_size=8))),
        administrations=draw(dosing_course()) + tuple(draw(st.lists(administration(), max_size=3))),
        prescription=draw(st.none() | prescription()),
        medications=tuple(
            draw(
                st.lists(
                    st.builds(
                        Medication, start=day, code=st.sampled_from([m.code for m in K.medications])
                    ),
                    max_size=2,
                )
            )
        ),
        adverse_events=tuple(
            draw(
                st.lists(
                    st.builds(
                        AdverseEvent,
                        date=day,
                        code=st.sampled_from([e.code for e in K.adverse_events]),
                    ),
                    max_size=2,
                )
            )
        ),
    )
