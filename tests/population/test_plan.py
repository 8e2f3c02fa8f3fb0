"""The rules are written once, read their numbers from the knowledge base, and transpile."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot
from sqlglot import exp

from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Administration, Case, Observation
from b12plan.population import plan as plan_module
from b12plan.population.convert import CohortMember, cohort_tables, write_tables
from b12plan.population.engines import DuckDBEngine
from b12plan.population.plan import (
    BOOKING_PARAMETERS,
    DIALECTS,
    MONITORING_CODES,
    build_plan,
    parameters,
    rule_codes,
    with_dependencies,
)
from tests.population.conftest import AS_OF, Cohort, codes_by_patient, duckdb_worklist

SQL_DIR = Path(str(resources.files("b12plan.population").joinpath("sql")))
SQL_FILES = sorted(SQL_DIR.rglob("*.sql"))
STRUCTURAL_NUMBERS = {"0", "1", "2"}  # flags, counts and halving; never a clinical figure


def test_every_monitoring_code_has_a_rule() -> None:
    assert len(MONITORING_CODES) == 13
    assert set(rule_codes()) >= set(MONITORING_CODES)


def test_every_rule_is_a_finding_code_of_the_knowledge_base(knowledge: Knowledge) -> None:
    assert set(rule_codes()) <= {f.code for f in knowledge.findings}


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_sql_file_holds_no_clinical_number(path: Path, knowledge: Knowledge) -> None:
    tree = sqlglot.parse_one(path.read_text(encoding="utf-8"), read="duckdb")
    numbers = {n.this for n in tree.find_all(exp.Literal) if not n.is_string}
    assert numbers <= STRUCTURAL_NUMBERS, f"{path.name}: literals {numbers - STRUCTURAL_NUMBERS}"
    names = {p.name for p in tree.find_all(exp.Placeholder)}
    allowed = set(parameters(knowledge, date(2026, 1, 1)))
    if path.parent.name == "booking":  # the booking list's window is the user's, not clinical
        allowed |= set(BOOKING_PARAMETERS)
    assert names <= allowed, names


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_plan_transpiles_with_every_parameter_filled(
    dialect: str, knowledge: Knowledge
) -> None:
    plan = build_plan(knowledge, date(2026, 3, 1), dialect)
    for text in [s.sql for s in plan.steps] + [plan.query]:
        tree = sqlglot.parse_one(text, read=dialect)  # it parses back in its own dialect
        assert not list(tree.find_all(exp.Placeholder)), text[:200]
        assert "b12plan-param" not in text
    assert "2026-03-01" in plan.query


def test_unknown_codes_and_dialects_are_refused(knowledge: Knowledge) -> None:
    with pytest.raises(ValueError, match="NOT_A_CODE"):
        build_plan(knowledge, date(2026, 3, 1), codes=["NOT_A_CODE"])
    with pytest.raises(ValueError, match="oracle"):
        build_plan(knowledge, date(2026, 3, 1), "oracle")


def test_a_knowledge_change_reaches_the_sql(tmp_path: Path, knowledge: Knowledge) -> None:
    """The follow-up review window is read from the knowledge base: move it, the rule moves."""
    first = date(2025, 12, 1)
    case = Case(
        as_of=date(2026, 3, 1),
        causes=("pernicious_anaemia",),
        observations=(Observation(first - timedelta(days=7), "b12_total", 90, "pmol/L"),),
        administrations=(Administration(first, "hydroxocobalamin", 1, "mg", "IM"),),
    )
    write_tables(cohort_tables([CohortMember("p1", case)], knowledge), tmp_path)
    days = (case.as_of - first).days
    assert days >= knowledge.timing("followup_review_days")
    shipped = codes_by_patient(duckdb_worklist(tmp_path, knowledge, case.as_of))
    assert "NO_FOLLOWUP_REVIEW" in shipped["p1"]

    later = tuple(
        dataclasses.replace(t, value=days + 1) if t.name == "followup_review_days" else t
        for t in knowledge.timings
    )
    edited = dataclasses.replace(knowledge, timings=later)
    changed = codes_by_patient(duckdb_worklist(tmp_path, edited, case.as_of))
    assert "NO_FOLLOWUP_REVIEW" not in changed.get("p1", frozenset())


def test_records_after_as_of_are_left_out(tmp_path: Path, knowledge: Knowledge) -> None:
    """A B12 result filed after as_of is not known yet: replaying an earlier date ignores it."""
    case = Case(
        as_of=date(2026, 3, 1),
        administrations=(Administration(date(2026, 1, 10), "hydroxocobalamin", 1, "mg", "IM"),),
        observations=(Observation(date(2026, 2, 15), "b12_total", 900, "pmol/L"),),
    )
    write_tables(cohort_tables([CohortMember("p1", case)], knowledge), tmp_path)
    earlier = codes_by_patient(duckdb_worklist(tmp_path, knowledge, date(2026, 2, 1)))
    later = codes_by_patient(duckdb_worklist(tmp_path, knowledge, date(2026, 3, 1)))
    assert "POST_INJECTION_SAMPLE" not in earlier["p1"]
    assert "POST_INJECTION_SAMPLE" in later["p1"]


def test_a_rule_that_reads_other_rules_runs_them_first_but_reports_only_its_own(
    small_cohort: Cohort, small_duckdb: pa.Table, knowledge: Knowledge
) -> None:
    plan = build_plan(knowledge, AS_OF, "duckdb", ["MAINTENANCE_APPROPRIATE"])
    names = [s.name for s in plan.steps]
    own = names.index("rule_maintenance_appropriate")
    assert names.index("rule_levels_falling_between_doses") < own
    assert names.index("rule_adherence_gap") < own
    assert plan.codes == ("MAINTENANCE_APPROPRIATE",)
    stored = {s.name for s in plan.steps if s.materialize and s.name.startswith("rule_")}
    assert stored == {"rule_levels_falling_between_doses", "rule_adherence_gap"}

    engine = DuckDBEngine(small_cohort.directory)
    try:
        alone = engine.run(plan)
    finally:
        engine.close()
    assert set(alone["code"].to_pylist()) == {"MAINTENANCE_APPROPRIATE"}
    in_full = small_duckdb.filter(pc.equal(small_duckdb["code"], "MAINTENANCE_APPROPRIATE"))
    assert alone.num_rows > 0
    assert alone.equals(in_full)


def test_rules_that_read_each_other_in_a_cycle_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = {"A_RULE": "SELECT * FROM rule_b_rule", "B_RULE": "SELECT * FROM rule_a_rule"}
    monkeypatch.setattr(plan_module, "_rule_sql", texts.__getitem__)
    with pytest.raises(ValueError, match="cycle: A_RULE -> B_RULE"):
        with_dependencies(["A_RULE"])
