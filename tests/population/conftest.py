"""Shared cohorts and engines for the population tests, built once per test session.

One SparkSession and one PostgreSQL schema serve every test; each engine runs a cohort once and
the tests compare the results. PostgreSQL comes from ``B12PLAN_TEST_POSTGRES_URL``; when it is
unreachable the PostgreSQL tests fail under CI and are skipped (loudly) elsewhere.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.knowledge import load_knowledge
from b12plan.population.convert import CohortMember, cases_from_tables, cohort_tables
from b12plan.population.engines import DuckDBEngine
from b12plan.population.generate import DEFAULT_END, generate
from b12plan.population.plan import build_plan, rule_codes
from b12plan.population.tables import TABLES
from tests.population.random_cases import AS_OF as RANDOM_AS_OF
from tests.population.random_cases import random_case
from tests.scenario_support import load_scenarios

AS_OF = DEFAULT_END  # generated histories end here; scenarios are shifted onto it
assert AS_OF == RANDOM_AS_OF
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
Codes = dict[str, frozenset[str]]
CASE_CLINICS = ("scenarios", "random")  # the clinic ids given to patients made from cases


@dataclass(frozen=True)
class Cohort:
    """A folder of contract tables and, for patients that came from cases, core's codes."""

    directory: Path
    patients: int
    core_codes: Codes  # patient id -> codes core gives (restricted to the SQL-covered codes)


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge()


def covered(codes: frozenset[str]) -> frozenset[str]:
    return codes & frozenset(rule_codes())


def codes_by_patient(worklist: pa.Table) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for row in worklist.select(["patient_id", "code"]).to_pylist():
        out.setdefault(row["patient_id"], set()).add(row["code"])
    return {k: frozenset(v) for k, v in out.items()}


def scenario_members(k: Knowledge) -> list[tuple[CohortMember, dict[str, Any]]]:
    return [
        (CohortMember(s["id"], parse_case(s["case"], k), clinic_id="scenarios"), s)
        for s in load_scenarios()
    ]


def _core_codes(members: list[CohortMember], k: Knowledge) -> Codes:
    return {m.patient_id: covered(evaluate(m.case, k, as_of=m.case.as_of).codes()) for m in members}


def build_mixed(
    directory: Path, k: Knowledge, *, generated: int, random_cases: int, seed: int
) -> Cohort:
    """Generated patients, every scenario (dates shifted onto AS_OF) and random edge cases."""
    gen_dir = directory / "generated"
    generate(generated, gen_dir, k, seed=seed, chunk_size=max(generated // 2, 1))
    rng = random.Random(seed)
    from_cases = [m for m, _ in scenario_members(k)] + [
        CohortMember(f"R{i:05d}", random_case(rng, k), clinic_id="random")
        for i in range(random_cases)
    ]
    # generated patients are keyed 0 .. generated - 1; the cases follow them
    case_tables = cohort_tables(from_cases, k, shift_to=AS_OF, first_key=generated)
    out = directory / "tables"
    out.mkdir(parents=True)
    for name, schema in TABLES.items():
        combined = pa.concat_tables([pq.read_table(gen_dir / f"{name}.parquet"), case_tables[name]])
        pq.write_table(combined.cast(schema), out / f"{name}.parquet")
    shutil.rmtree(gen_dir)
    return Cohort(out, generated + len(from_cases), _core_codes(from_cases, k))


@pytest.fixture(scope="session")
def large_cohort(tmp_path_factory: pytest.TempPathFactory, knowledge: Knowledge) -> Cohort:
    """10,000 generated patients, the scenarios and 500 random cases: DuckDB and PostgreSQL."""
    return build_mixed(
        tmp_path_factory.mktemp("large"), knowledge, generated=10_000, random_cases=500, seed=11
    )


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory: pytest.TempPathFactory, knowledge: Knowledge) -> Cohort:
    """1,000 generated patients, the scenarios and 300 random cases: for Spark."""
    return build_mixed(
        tmp_path_factory.mktemp("small"), knowledge, generated=1_000, random_cases=300, seed=12
    )


def duckdb_worklist(directory: Path, k: Knowledge, as_of: date = AS_OF) -> pa.Table:
    engine = DuckDBEngine(directory)
    try:
        return engine.run(build_plan(k, as_of, "duckdb"))
    finally:
        engine.close()


@pytest.fixture(scope="session")
def large_duckdb(large_cohort: Cohort, knowledge: Knowledge) -> pa.Table:
    return duckdb_worklist(large_cohort.directory, knowledge)


@pytest.fixture(scope="session")
def small_duckdb(small_cohort: Cohort, knowledge: Knowledge) -> pa.Table:
    return duckdb_worklist(small_cohort.directory, knowledge)


def generated_core_codes(directory: Path, k: Knowledge, every: int = 1) -> Codes:
    """Core's codes for every ``every``-th generated patient, read back from the tables."""
    tables = {name: pq.read_table(directory / f"{name}.parquet") for name in TABLES}
    generated = (m for m in cases_from_tables(tables, AS_OF) if m.clinic_id not in CASE_CLINICS)
    return {
        m.patient_id: covered(evaluate(m.case, k, as_of=AS_OF).codes())
        for i, m in enumerate(generated)
        if i % every == 0
    }


# -- engines that need a server or a JVM -----------------------------------------------------
@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local SparkSession for the whole test session (it takes seconds to start)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI"):
            pytest.fail("Spark tests need Java (JAVA_HOME or java on PATH)")
        pytest.skip("SPARK TESTS SKIPPED: no Java runtime found")
    from b12plan.population.engines import spark_session

    session = spark_session("local[2]", driver_memory="2g", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pg_url() -> str:
    import psycopg

    from b12plan.population.engines import psycopg_url

    url = os.environ.get("B12PLAN_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        with psycopg.connect(psycopg_url(url), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable at {url}: {exc}")
        pytest.skip(f"POSTGRESQL TESTS SKIPPED: cannot reach {url} ({exc})")
    return url


@pytest.fixture(scope="session")
def pg_schema(pg_url: str) -> Iterator[str]:
    """A schema of this test session's own, dropped afterwards."""
    import psycopg

    from b12plan.population.engines import psycopg_url

    name = f"b12plan_pop_test_{os.getpid()}_{secrets.token_hex(3)}"
    yield name
    with psycopg.connect(psycopg_url(pg_url), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def scenario_ids() -> list[str]:
    return [json.loads(p.read_text(encoding="utf-8"))["id"] for p in _scenario_paths()]


def _scenario_paths() -> list[Path]:
    return sorted((Path(__file__).parents[1] / "scenarios").glob("*.json"))
