"""The booking list ("due in the next N days") in SQL gives the next doses core gives.

Core's rule: ``Assessment.next_dose`` is set and ``as_of <= next_dose.due <= as_of + N``; a
deceased patient has no next dose. Each row is compared whole (patient, clinic, due, earliest,
overdue_after, phase, protocol), in the list's order (due date, then patient id).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.population.convert import CohortMember, cases_from_tables, cohort_tables, write_tables
from b12plan.population.engines import (
    DuckDBEngine,
    PostgresEngine,
    SparkEngine,
    load_postgres,
)
from b12plan.population.plan import build_due_plan
from b12plan.population.tables import DUE_SCHEMA, TABLES
from tests.population.conftest import AS_OF, CASE_CLINICS, Cohort, scenario_members
from tests.population.random_cases import random_case

WINDOWS = (0, 7, 30)
Row = tuple[Any, ...]


def sql_rows(table: pa.Table) -> list[Row]:
    """The list as compared with core: every column but the engine's own patient_key."""
    names = [n for n in DUE_SCHEMA.names if n != "patient_key"]
    return [tuple(r[n] for n in names) for r in table.select(names).to_pylist()]


def core_rows(members: Iterable[CohortMember], knowledge: Knowledge, days: int) -> list[Row]:
    """Core's booking list: each member assessed at its own as_of."""
    rows = []
    for m in members:
        as_of = m.case.as_of
        a = evaluate(m.case, knowledge, as_of=as_of)
        nd = a.next_dose
        if nd is None or not as_of <= nd.due <= as_of + timedelta(days=days):
            continue
        protocol = a.regimen.protocol_id if a.regimen is not None else None
        rows.append(
            (m.patient_id, m.clinic_id, nd.due, nd.earliest, nd.overdue_after, a.phase, protocol)
        )
    return sorted(rows, key=lambda r: (r[2], r[0]))


def duckdb_due(directory: Path, knowledge: Knowledge, as_of: date, days: int) -> pa.Table:
    engine = DuckDBEngine(directory)
    try:
        return engine.run(build_due_plan(knowledge, as_of, "duckdb", days=days))
    finally:
        engine.close()


def read_back(directory: Path, every: int) -> list[CohortMember]:
    """Every ``every``-th generated patient, read back from the tables as a case at AS_OF."""
    tables = {name: pq.read_table(directory / f"{name}.parquet") for name in TABLES}
    generated = (m for m in cases_from_tables(tables, AS_OF) if m.clinic_id not in CASE_CLINICS)
    return [m for i, m in enumerate(generated) if i % every == 0]


def only(rows: list[Row], ids: set[str]) -> list[Row]:
    return [r for r in rows if r[0] in ids]


@pytest.fixture(scope="module")
def scenarios_by_date(
    tmp_path_factory: pytest.TempPathFactory, knowledge: Knowledge
) -> dict[date, tuple[Path, list[CohortMember]]]:
    """The scenarios, unshifted, one folder of tables per as_of."""
    groups: dict[date, list[CohortMember]] = defaultdict(list)
    for member, _ in scenario_members(knowledge):
        groups[member.case.as_of].append(member)
    out = {}
    for as_of, members in sorted(groups.items()):
        folder = tmp_path_factory.mktemp(f"due-scenarios-{as_of}")
        write_tables(cohort_tables(members, knowledge), folder)
        out[as_of] = (folder, members)
    return out


@pytest.fixture(scope="module")
def random_cohort(
    tmp_path_factory: pytest.TempPathFactory, knowledge: Knowledge
) -> tuple[Path, list[CohortMember]]:
    """800 random edge cases, and 100 of them again as patients who died on or before as_of."""
    rng = random.Random(2026)
    members = [CohortMember(f"R{i:05d}", random_case(rng, knowledge)) for i in range(800)]
    for i, m in enumerate(members[:100]):
        died = dataclasses.replace(m.case.patient, deceased_date=AS_OF - timedelta(days=i % 3))
        members.append(CohortMember(f"D{i:05d}", dataclasses.replace(m.case, patient=died)))
    folder = tmp_path_factory.mktemp("due-random")
    write_tables(cohort_tables(members, knowledge), folder)
    return folder, members


@pytest.mark.parametrize("days", WINDOWS)
def test_scenarios_due_in_the_window_match_core(
    days: int,
    scenarios_by_date: dict[date, tuple[Path, list[CohortMember]]],
    knowledge: Knowledge,
) -> None:
    listed = 0
    for as_of, (folder, members) in scenarios_by_date.items():
        want = core_rows(members, knowledge, days)
        assert sql_rows(duckdb_due(folder, knowledge, as_of, days)) == want, as_of
        listed += len(want)
    assert listed > 0  # some scenario is due in every window, 0 days (first doses) included


@pytest.mark.parametrize("days", WINDOWS)
def test_random_cases_due_in_the_window_match_core(
    days: int, random_cohort: tuple[Path, list[CohortMember]], knowledge: Knowledge
) -> None:
    folder, members = random_cohort
    want = core_rows(members, knowledge, days)
    got = sql_rows(duckdb_due(folder, knowledge, AS_OF, days))
    assert got == want
    assert not any(r[0].startswith("D") for r in got)  # the deceased are never listed
    if days == 30:
        # the cases reach every branch: first dose, loading (catch-up too) and maintenance
        assert {r[5] for r in got} >= {"untreated", "loading", "maintenance"}
        assert any(r[2] == AS_OF for r in got) and any(r[2] > AS_OF for r in got)


def test_the_window_is_inclusive_and_grows_with_n(
    random_cohort: tuple[Path, list[CohortMember]], knowledge: Knowledge
) -> None:
    folder, _ = random_cohort
    lists = {d: duckdb_due(folder, knowledge, AS_OF, d) for d in WINDOWS}
    ids = {d: set(t["patient_id"].to_pylist()) for d, t in lists.items()}
    assert ids[0] < ids[7] < ids[30]
    last = AS_OF + timedelta(days=7)
    assert last in lists[7]["due"].to_pylist()  # the window's last day is in it
    assert all(AS_OF <= d <= last for d in lists[7]["due"].to_pylist())
    assert lists[7].schema == DUE_SCHEMA


def test_generated_patients_due_match_core(large_cohort: Cohort, knowledge: Knowledge) -> None:
    """Every 10th generated patient, read back as a case, against the same patients' rows."""
    members = read_back(large_cohort.directory, every=10)
    ids = {m.patient_id for m in members}
    want = core_rows(members, knowledge, 30)
    assert len(want) > 50
    got = sql_rows(duckdb_due(large_cohort.directory, knowledge, AS_OF, 30))
    assert only(got, ids) == want


@pytest.mark.postgres
def test_postgres_gives_duckdbs_due_lists(
    large_cohort: Cohort, knowledge: Knowledge, pg_url: str, pg_schema: str
) -> None:
    load_postgres(large_cohort.directory, pg_url, pg_schema)
    members = read_back(large_cohort.directory, every=10)
    ids = {m.patient_id for m in members}
    engine = PostgresEngine(pg_url, pg_schema)
    for days in WINDOWS:
        due = engine.run(build_due_plan(knowledge, AS_OF, "postgres", days=days))
        assert due.equals(duckdb_due(large_cohort.directory, knowledge, AS_OF, days)), days
        assert only(sql_rows(due), ids) == core_rows(members, knowledge, days), days


@pytest.mark.spark
def test_spark_gives_duckdbs_due_list(
    small_cohort: Cohort, knowledge: Knowledge, spark: Any
) -> None:
    members = read_back(small_cohort.directory, every=5)
    ids = {m.patient_id for m in members}
    engine = SparkEngine(small_cohort.directory, spark)
    due = engine.run(build_due_plan(knowledge, AS_OF, "spark", days=14))
    engine.close()
    assert due.num_rows > 0
    assert due.equals(duckdb_due(small_cohort.directory, knowledge, AS_OF, 14))
    assert only(sql_rows(due), ids) == core_rows(members, knowledge, 14)


def test_due_plan_rejects_a_negative_window(knowledge: Knowledge) -> None:
    with pytest.raises(ValueError, match="days"):
        build_due_plan(knowledge, AS_OF, "duckdb", days=-1)
