"""Cases become contract tables in canonical units, and come back as the same cases."""

from __future__ import annotations

from datetime import date

import pytest

from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Administration, Case, Observation, Patient, Prescription
from b12plan.population.convert import CohortMember, cases_from_tables, cohort_tables
from b12plan.population.tables import TABLES

CASE = Case(
    as_of=date(2026, 3, 1),
    patient=Patient("x", "female", date(1960, 1, 1)),
    causes=("pernicious_anaemia",),
    observations=(
        Observation(date(2026, 1, 2), "b12_total", 150, "ng/L"),
        Observation(date(2026, 1, 2), "haemoglobin", 10.4, "g/dL", reference_low=11.5),
        Observation(date(2026, 1, 2), "mma", 520, "nmol/L"),
    ),
    administrations=(Administration(date(2026, 1, 5), "hydroxocobalamin", 1, "mg", "IM"),),
    prescription=Prescription(
        "hydroxocobalamin", 1000, "mcg", "IM", "loading", 2, date(2026, 1, 5)
    ),
)


def test_results_and_doses_are_stored_in_canonical_units(knowledge: Knowledge) -> None:
    tables = cohort_tables([CohortMember("p1", CASE, clinic_id="c1")], knowledge)
    obs = {r["code"]: r for r in tables["observations"].to_pylist()}
    b12 = knowledge.analyte("b12_total")
    assert obs["b12_total"]["value"] == b12.to_canonical(150, "ng/L")
    assert obs["b12_total"]["unit"] == b12.canonical_unit
    assert (obs["b12_total"]["reported_value"], obs["b12_total"]["reported_unit"]) == (150, "ng/L")
    hb = knowledge.analyte("haemoglobin")
    assert obs["haemoglobin"]["value"] == hb.to_canonical(10.4, "g/dL")
    assert obs["haemoglobin"]["reference_low"] == hb.to_canonical(11.5, "g/dL")
    assert obs["mma"]["value"] == knowledge.analyte("mma").to_canonical(520, "nmol/L")
    dose = tables["administrations"].to_pylist()[0]
    assert dose["dose_mcg"] == knowledge.formulary.to_mcg(1, "mg")
    assert tables["prescriptions"].to_pylist()[0]["dose_mcg"] == dose["dose_mcg"]
    assert tables["patients"].to_pylist()[0]["clinic_id"] == "c1"
    assert set(tables) == set(TABLES)


def test_shifting_moves_every_date_with_as_of(knowledge: Knowledge) -> None:
    tables = cohort_tables([CohortMember("p1", CASE)], knowledge, shift_to=date(2026, 3, 11))
    assert tables["observations"].to_pylist()[0]["event_date"] == date(2026, 1, 12)
    assert tables["administrations"].to_pylist()[0]["event_date"] == date(2026, 1, 15)
    assert tables["prescriptions"].to_pylist()[0]["start_date"] == date(2026, 1, 15)
    assert tables["patients"].to_pylist()[0]["birth_date"] == date(1960, 1, 11)


def test_a_patient_id_twice_is_refused(knowledge: Knowledge) -> None:
    with pytest.raises(ValueError, match="'p1' appears twice"):
        cohort_tables([CohortMember("p1", CASE), CohortMember("p1", CASE)], knowledge)


def test_tables_read_back_as_cases_assess_the_same(knowledge: Knowledge) -> None:
    tables = cohort_tables([CohortMember("p1", CASE)], knowledge)
    (back,) = cases_from_tables(tables, CASE.as_of)
    assert back.patient_id == "p1"
    assert (
        evaluate(back.case, knowledge, as_of=CASE.as_of).codes()
        == evaluate(CASE, knowledge, as_of=CASE.as_of).codes()
    )
    assert back.case.administrations == CASE.administrations
    assert back.case.prescription == CASE.prescription
