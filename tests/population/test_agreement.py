"""The SQL rules give the codes core gives, on every engine.

Core (``b12plan.core.evaluate``) is the reference. Each scenario is evaluated by core at its own
``as_of`` and by the SQL; random edge cases and generated patients widen the comparison. Only the
codes the SQL covers are compared (``rule_codes()``).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.population.convert import CohortMember, cohort_tables, write_tables
from b12plan.population.engines import PostgresEngine, SparkEngine, load_postgres
from b12plan.population.plan import build_plan, rule_codes
from tests.population.conftest import (
    AS_OF,
    Codes,
    Cohort,
    codes_by_patient,
    covered,
    duckdb_worklist,
    generated_core_codes,
    scenario_members,
)
from tests.population.random_cases import random_case
from tests.scenario_support import load_scenarios

SCENARIOS = load_scenarios()


def disagreements(core: Codes, worklist: pa.Table) -> list[str]:
    """One line per patient whose SQL codes differ from core's."""
    sql = codes_by_patient(worklist)
    out = []
    for pid, want in sorted(core.items()):
        got = sql.get(pid, frozenset())
        if got != want:
            out.append(f"{pid}: core only {sorted(want - got)}, SQL only {sorted(got - want)}")
    return out


@pytest.fixture(scope="module")
def scenarios_at_own_dates(
    tmp_path_factory: pytest.TempPathFactory, knowledge: Knowledge
) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """(core codes, DuckDB codes) per scenario, each run at the scenario's own as_of, unshifted."""
    groups: dict[date, list[CohortMember]] = defaultdict(list)
    for member, _ in scenario_members(knowledge):
        groups[member.case.as_of].append(member)
    out = {}
    for as_of, members in sorted(groups.items()):
        folder = tmp_path_factory.mktemp(f"scenarios-{as_of}")
        write_tables(cohort_tables(members, knowledge), folder)
        sql = codes_by_patient(duckdb_worklist(folder, knowledge, as_of))
        for m in members:
            core = covered(evaluate(m.case, knowledge, as_of=as_of).codes())
            out[m.patient_id] = (core, sql.get(m.patient_id, frozenset()))
    return out


# PATIENT_DECEASED has no rule: a deceased patient is left off the worklist altogether, so the
# code can never appear on one (test_deceased_patients_leave_the_worklist).
NOT_ON_WORKLISTS = frozenset({"PATIENT_DECEASED"})


def test_every_finding_code_runs_as_sql_or_is_never_on_a_worklist(knowledge: Knowledge) -> None:
    assert {f.code for f in knowledge.findings} == set(rule_codes()) | NOT_ON_WORKLISTS
    assert not NOT_ON_WORKLISTS & set(rule_codes())


def test_the_scenarios_exercise_every_covered_code(
    scenarios_at_own_dates: dict[str, tuple[frozenset[str], frozenset[str]]],
) -> None:
    fired = set().union(*(core for core, _ in scenarios_at_own_dates.values()))
    assert fired == set(rule_codes())


def test_deceased_patients_leave_the_worklist(tmp_path: Path, knowledge: Knowledge) -> None:
    """Core gives a deceased patient the one finding PATIENT_DECEASED; the worklist has no row
    for them (and the same patient, not yet deceased on as_of, is on it)."""
    rng = random.Random(7)
    members, alive_too = [], set()
    for i in range(200):
        case = random_case(rng, knowledge)
        died = AS_OF - timedelta(days=i % 3)  # on or before as_of
        patient = dataclasses.replace(case.patient, deceased_date=died)
        members.append(CohortMember(f"D{i:03d}", dataclasses.replace(case, patient=patient)))
        later = dataclasses.replace(case.patient, deceased_date=AS_OF + timedelta(days=1))
        members.append(CohortMember(f"A{i:03d}", dataclasses.replace(case, patient=later)))
        alive_too.add(f"A{i:03d}")
    write_tables(cohort_tables(members, knowledge), tmp_path)
    sql = codes_by_patient(duckdb_worklist(tmp_path, knowledge))
    for m in members:
        core = evaluate(m.case, knowledge, as_of=AS_OF).codes()
        if m.patient_id in alive_too:
            assert "PATIENT_DECEASED" not in core
            assert sql.get(m.patient_id, frozenset()) == covered(core)
        else:
            assert core == {"PATIENT_DECEASED"}
            assert m.patient_id not in sql
    assert sum(1 for pid in sql if pid in alive_too) > 150  # the living twins are on the list


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_scenario_gets_the_same_codes_from_duckdb_as_from_core(
    scenario: dict[str, Any],
    scenarios_at_own_dates: dict[str, tuple[frozenset[str], frozenset[str]]],
) -> None:
    core, sql = scenarios_at_own_dates[scenario["id"]]
    assert sql == core, scenario["rationale"]


def test_random_edge_cases_agree_with_core(tmp_path: Path, knowledge: Knowledge) -> None:
    rng = random.Random(2026)
    members = [CohortMember(f"R{i:05d}", random_case(rng, knowledge)) for i in range(800)]
    write_tables(cohort_tables(members, knowledge), tmp_path)
    core = {
        m.patient_id: covered(evaluate(m.case, knowledge, as_of=AS_OF).codes()) for m in members
    }
    assert sum(bool(c) for c in core.values()) > 500  # the cases do exercise the rules
    assert disagreements(core, duckdb_worklist(tmp_path, knowledge)) == []


def test_generated_patients_agree_with_core(
    large_cohort: Cohort, large_duckdb: pa.Table, knowledge: Knowledge
) -> None:
    """Every 10th generated patient is read back as a case and assessed by core."""
    core = generated_core_codes(large_cohort.directory, knowledge, every=10)
    assert len(core) == 1_000
    assert disagreements(core, large_duckdb) == []


def test_scenarios_shifted_onto_one_date_agree_with_core(
    large_cohort: Cohort, large_duckdb: pa.Table
) -> None:
    """Shifting a case's dates with its as_of changes nothing: one run serves every scenario."""
    assert disagreements(large_cohort.core_codes, large_duckdb) == []


@pytest.mark.postgres
def test_postgres_gives_duckdbs_worklist_and_cores_codes(
    large_cohort: Cohort,
    large_duckdb: pa.Table,
    knowledge: Knowledge,
    pg_url: str,
    pg_schema: str,
) -> None:
    counts = load_postgres(large_cohort.directory, pg_url, pg_schema)
    assert counts["patients"] == large_cohort.patients
    worklist = PostgresEngine(pg_url, pg_schema).run(build_plan(knowledge, AS_OF, "postgres"))
    assert disagreements(large_cohort.core_codes, worklist) == []
    assert worklist.num_rows == large_duckdb.num_rows
    assert worklist.equals(large_duckdb)


@pytest.mark.spark
def test_spark_gives_duckdbs_worklist_and_cores_codes(
    small_cohort: Cohort, small_duckdb: pa.Table, knowledge: Knowledge, spark: Any
) -> None:
    engine = SparkEngine(small_cohort.directory, spark)
    worklist = engine.run(build_plan(knowledge, AS_OF, "spark"))
    engine.close()
    assert disagreements(small_cohort.core_codes, worklist) == []
    assert worklist.num_rows == small_duckdb.num_rows
    assert worklist.equals(small_duckdb)


def test_same_day_doses_of_one_product_agree_with_core_in_either_order(
    tmp_path: Path, knowledge: Knowledge
) -> None:
    """Two doses of one product on the latest dose day, different amounts whose text sorts the
    other way round (500 and 1000 mcg, 2 and 10 mg): core orders them by amount, as the SQL does,
    whichever order they were entered in."""
    rng = random.Random(12)
    pairs = [(500, 1000, "mcg"), (50, 100, "mcg"), (2, 10, "mg"), (5, 10, "mg"), (9, 10, "mg")]
    members = []
    for i in range(600):
        case = random_case(rng, knowledge)
        if not case.administrations:
            continue
        smaller, larger, unit = pairs[i % len(pairs)]
        last = dataclasses.replace(case.administrations[-1], dose=smaller, unit=unit)
        other = dataclasses.replace(last, dose=larger, given_by="self")
        for order, admins in (
            ("a", (*case.administrations[:-1], last, other)),
            ("b", (other, last, *case.administrations[:-1])),
        ):
            members.append(
                CohortMember(f"S{i:03d}{order}", dataclasses.replace(case, administrations=admins))
            )
    write_tables(cohort_tables(members, knowledge), tmp_path)
    core = {
        m.patient_id: covered(evaluate(m.case, knowledge, as_of=AS_OF).codes()) for m in members
    }
    for pid in core:
        if pid.endswith("a"):
            assert core[pid] == core[pid[:-1] + "b"], pid
    assert len(members) > 800
    assert disagreements(core, duckdb_worklist(tmp_path, knowledge)) == []
