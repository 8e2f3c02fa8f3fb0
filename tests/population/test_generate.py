"""Synthetic cohorts: reproducible, in the contract's vocabulary, realistic in their mistakes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from b12plan.core.knowledge import Knowledge
from b12plan.population.generate import DEFAULT_END, generate, load_profile
from b12plan.population.tables import TABLES
from tests.population.conftest import codes_by_patient, duckdb_worklist


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory, knowledge: Knowledge) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(3000, out, knowledge, seed=5, chunk_size=3000)
    return out


def _tables(folder: Path) -> dict[str, pa.Table]:
    return {name: pq.read_table(folder / f"{name}.parquet") for name in TABLES}


def test_a_seed_gives_the_same_cohort_whatever_the_chunk_size(
    cohort: Path, tmp_path: Path, knowledge: Knowledge
) -> None:
    generate(3000, tmp_path / "again", knowledge, seed=5, chunk_size=700)
    first, again = _tables(cohort), _tables(tmp_path / "again")
    assert all(first[n].equals(again[n]) for n in TABLES)
    generate(3000, tmp_path / "other", knowledge, seed=6, chunk_size=3000)
    other = _tables(tmp_path / "other")
    assert not first["observations"].equals(other["observations"])


def test_every_code_and_unit_is_in_the_knowledge_base(cohort: Path, knowledge: Knowledge) -> None:
    t = _tables(cohort)
    vocab = {
        "causes": {c.code for c in knowledge.causes},
        "symptoms": {s.code for s in knowledge.symptoms},
        "medications": {m.code for m in knowledge.medications},
        "adverse_events": {e.code for e in knowledge.adverse_events},
    }
    column = {"causes": "cause"}
    for name, allowed in vocab.items():
        used = set(t[name].column(column.get(name, "code")).to_pylist())
        assert used <= allowed, (name, used - allowed)
    obs = t["observations"].to_pylist()
    for row in obs:
        analyte = knowledge.analyte(row["code"])
        assert row["value"] == analyte.to_canonical(row["reported_value"], row["reported_unit"])
    b12_units = {r["reported_unit"] for r in obs if r["code"] == "b12_total"}
    assert len(b12_units) >= 2  # laboratories report in different units
    doses = t["administrations"].to_pylist()
    for row in doses:
        assert row["dose_mcg"] == knowledge.formulary.to_mcg(
            row["reported_dose"], row["reported_unit"]
        )
    assert {r["given_by"] for r in doses} == {"clinic", "self", "carer"}


def test_the_cohort_makes_the_mistakes_seen_in_practice(cohort: Path, knowledge: Knowledge) -> None:
    """About the profile's share of treated patients had no level measured (Silverstein 2019)."""
    codes = codes_by_patient(duckdb_worklist(cohort, knowledge, DEFAULT_END))
    patients = pq.read_table(cohort / "patients.parquet").to_pylist()
    ids = {p["patient_key"]: p["patient_id"] for p in patients}
    keys = set(pq.read_table(cohort / "administrations.parquet")["patient_key"].to_pylist())
    treated = {ids[k] for k in keys}
    untested = sum("NO_PRETREATMENT_TEST" in codes.get(p, ()) for p in treated)
    share = load_profile()["treatment"]["no_pretreatment_test"]
    assert abs(untested / len(treated) - share) < 0.04
    seen = set().union(*codes.values())
    for code in (
        "MAINTENANCE_WITHOUT_LOADING",
        "LOADING_INCOMPLETE",
        "INJECTION_OVERDUE",
        "STOPPED_LIFELONG_THERAPY",
        "FOLATE_WITHOUT_B12",
        "ADHERENCE_GAP",
        "LEVELS_FALLING_BETWEEN_DOSES",
        "TREATMENT_WITHOUT_INDICATION",
    ):
        assert code in seen, code


def test_the_cohort_has_the_contract_v11_situations(cohort: Path, knowledge: Knowledge) -> None:
    """Reporters, decisions, transfers in, deaths, children, oral orders, duplicates and
    implausible results all occur, and the v1.1 codes they lead to are on the worklist."""
    t = _tables(cohort)
    assert set(t["symptoms"]["reporter"].to_pylist()) == {"clinician", "patient", "carer"}
    assert set(t["decisions"]["code"].to_pylist()) == {
        "neuro_loading_complete",
        "rechallenge_cleared",
    }
    patients = t["patients"].to_pylist()
    assert any(p["deceased_date"] is not None for p in patients)
    assert {p["prior_loading_completed"] for p in patients} >= {True, False}
    assert "breastfeeding" in set(t["causes"]["cause"].to_pylist())
    assert "oral" in set(t["prescriptions"]["route"].to_pylist())
    doses = t["administrations"].select(["patient_key", "event_date", "route"]).to_pylist()
    assert len({tuple(d.values()) for d in doses}) < len(doses)  # charted twice
    seen = set().union(*codes_by_patient(duckdb_worklist(cohort, knowledge, DEFAULT_END)).values())
    for code in (
        "OUTSIDE_SCOPE_AGE",
        "RESULT_IMPLAUSIBLE",
        "PREGNANCY_REVIEW",
        "ORAL_DOSE_TOO_LOW_FOR_MALABSORPTION",
        "POSSIBLE_HYPERSENSITIVITY",
        "CONFIRMATORY_TEST_NEEDED",
        "NITROUS_OXIDE_EXPOSURE",
    ):
        assert code in seen, code


def test_some_records_are_dated_after_the_end(cohort: Path) -> None:
    dates = pq.read_table(cohort / "observations.parquet")["event_date"]
    assert pc.any(pc.greater(dates, pa.scalar(DEFAULT_END))).as_py()


def test_a_cohort_needs_patients(tmp_path: Path, knowledge: Knowledge) -> None:
    with pytest.raises(ValueError, match="patients"):
        generate(0, tmp_path, knowledge)
