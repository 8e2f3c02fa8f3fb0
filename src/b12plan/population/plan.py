"""The monitoring rules as one plan of SQL steps, written once in DuckDB's dialect.

``sql/*.sql`` derive the facts core derives (results with their cut-offs, the injection course,
deficiency, protocol, phase, dose window); ``sql/rules/<code>.sql`` each select the patients for
whom one finding fires, with typed evidence. Every clinical number reaches the SQL from the
knowledge base: scalars as ``:name`` placeholders (timings by name, ``as_of``, anaemia cut-offs),
tables as ``kb_*`` steps made from ``Knowledge``. ``sqlglot`` fills the placeholders with typed
literals and writes the PostgreSQL or Spark SQL text, so the three engines run the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import sqlglot
from sqlglot import exp

from b12plan.core.knowledge import Knowledge
from b12plan.population.tables import DUE_SCHEMA, WORKLIST_SCHEMA, sql_type

DIALECTS = ("duckdb", "postgres", "spark")

# Derived facts, in dependency order. "Materialised" steps are read by several later steps: the
# engines store them (temporary table, cached view) instead of recomputing them.
FACT_STEPS: tuple[tuple[str, bool], ...] = (
    ("results", True),
    ("symptom_status", True),
    ("dose_validity", False),
    ("oral_doses", True),
    ("course_dose", True),
    ("course", True),
    ("patient_facts", True),
    ("protocol_choice", False),
    ("patient_course", True),
    ("patient_state", True),
    ("follow_up_results", True),
    ("order_checks", True),
)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Step:
    """One named relation: the engine creates it (view or table) before the next step runs."""

    name: str
    sql: str
    materialize: bool


@dataclass(frozen=True)
class Plan:
    """Everything an engine runs for one ``as_of``.

    Two equivalent forms: ``steps`` then ``worklist_sql`` (each step created as a relation, for
    engines that plan better over stored intermediate results), or ``query``, one statement with
    every step as a common table expression (for engines that plan better seeing it all).
    ``worklist_sql`` is the plan's last query: the worklist, or another list over the same steps
    (the booking list); ``schema`` and ``order`` say what its rows are and how they are sorted.
    """

    dialect: str
    as_of: date
    steps: tuple[Step, ...]
    worklist_sql: str
    query: str
    codes: tuple[str, ...]
    schema: pa.Schema = WORKLIST_SCHEMA
    order: tuple[str, ...] = ("patient_id", "code")


MONITORING_CODES = (
    # the questions every population screen answers: overdue and missed doses, maintenance without
    # loading, falling levels, stopped lifelong therapy, folic acid alone, treatment without a test
    # or an indication, no follow-up, and product, dose and allergy mistakes
    "INJECTION_OVERDUE",
    "MAINTENANCE_WITHOUT_LOADING",
    "LOADING_INCOMPLETE",
    "NO_PRETREATMENT_TEST",
    "TREATMENT_WITHOUT_INDICATION",
    "NO_FOLLOWUP_REVIEW",
    "STOPPED_LIFELONG_THERAPY",
    "ADHERENCE_GAP",
    "LEVELS_FALLING_BETWEEN_DOSES",
    "FOLATE_WITHOUT_B12",
    "PRODUCT_NOT_FOR_DEFICIENCY",
    "DOSE_UNIT_SUSPECT",
    "ALLERGIC_REACTION",
)


@cache
def rule_codes() -> tuple[str, ...]:
    """Finding codes with a SQL rule (``sql/rules/<code>.sql``), sorted."""
    folder = resources.files(__package__).joinpath("sql").joinpath("rules")
    return tuple(
        sorted(
            p.name.removesuffix(".sql").upper() for p in folder.iterdir() if p.name.endswith(".sql")
        )
    )


@cache
def _rule_sql(code: str) -> str:
    """A rule's SQL as shipped (read once: the plan reads it to find dependencies and to run it)."""
    return _read("rules", f"{code.lower()}.sql")


def _rule_dependencies(code: str) -> tuple[str, ...]:
    """The rules whose rows ``code``'s rule reads (``rule_<code>`` relations), sorted."""
    names = set(re.findall(r"\brule_([a-z_]+)\b", _rule_sql(code)))
    return tuple(sorted(n.upper() for n in names if n.upper() != code))


def with_dependencies(codes: Iterable[str]) -> tuple[str, ...]:
    """The rules to run for ``codes``: a rule may read another's rows (``rule_<code>``), which is
    then run too, before it (and stored, as a shared step); only ``codes`` reach the worklist."""
    ordered: list[str] = []

    def visit(code: str, path: tuple[str, ...]) -> None:
        if code in path:
            raise ValueError(f"SQL rules depend on each other in a cycle: {' -> '.join(path)}")
        if code in ordered:
            return
        for dependency in _rule_dependencies(code):
            visit(dependency, (*path, code))
        ordered.append(code)

    for code in codes:
        visit(code, ())
    return tuple(ordered)


def _read(*parts: str) -> str:
    node = resources.files(__package__).joinpath("sql")
    for part in parts:
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def build_plan(
    knowledge: Knowledge,
    as_of: date,
    dialect: str = "duckdb",
    codes: Sequence[str] | None = None,
) -> Plan:
    """The steps and worklist query for ``as_of`` in ``dialect``, for ``codes`` (default: all)."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
    chosen = rule_codes() if codes is None else tuple(codes)
    unknown = sorted(set(chosen) - set(rule_codes()))
    if unknown:
        raise ValueError(f"no SQL rule for {', '.join(unknown)}")
    params = parameters(knowledge, as_of)
    sources: list[tuple[str, str, bool]] = [
        (name, sql, False) for name, sql in knowledge_steps(knowledge).items()
    ]
    sources += [(name, _read(f"{name}.sql"), mat) for name, mat in FACT_STEPS]
    rules = with_dependencies(chosen)
    read_by_rules = {dep for code in rules for dep in _rule_dependencies(code)}
    sources += [(f"rule_{code.lower()}", _rule_sql(code), code in read_by_rules) for code in rules]
    return _assemble(dialect, as_of, params, sources, _worklist_sql(chosen), chosen)


# The booking list's own parameters (the user's choice, not clinical numbers).
BOOKING_PARAMETERS = ("due_within_days",)

# The facts the booking list reads: every step up to patient_state (the rules are not run).
_DUE_STEPS = FACT_STEPS[: [name for name, _ in FACT_STEPS].index("patient_state") + 1]


def build_due_plan(
    knowledge: Knowledge, as_of: date, dialect: str = "duckdb", *, days: int
) -> Plan:
    """The booking list for ``as_of``: patients whose next dose falls due within ``days`` days
    (``sql/booking/due_soon.sql``), over the same fact steps as the worklist."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
    if days < 0:
        raise ValueError(f"days must be 0 or more, not {days}")
    params = {**parameters(knowledge, as_of), BOOKING_PARAMETERS[0]: days}
    sources: list[tuple[str, str, bool]] = [
        (name, sql, False) for name, sql in knowledge_steps(knowledge).items()
    ]
    sources += [(name, _read(f"{name}.sql"), mat) for name, mat in _DUE_STEPS]
    return _assemble(
        dialect,
        as_of,
        params,
        sources,
        _read("booking", "due_soon.sql"),
        (),
        schema=DUE_SCHEMA,
        order=("due", "patient_id"),
    )


def _assemble(
    dialect: str,
    as_of: date,
    params: dict[str, Any],
    sources: list[tuple[str, str, bool]],
    final_sql: str,
    codes: tuple[str, ...],
    *,
    schema: pa.Schema = WORKLIST_SCHEMA,
    order: tuple[str, ...] = ("patient_id", "code"),
) -> Plan:
    """Transpile the steps and the final query; write them as one statement too."""
    steps = tuple(Step(n, transpile(sql, dialect, params), m) for n, sql, m in sources)
    final = transpile(final_sql, dialect, params)
    # "WITH name AS (...), ... SELECT" reads the same in the three dialects, nested WITH included
    ctes = ",\n".join(f"{step.name} AS (\n{step.sql}\n)" for step in steps)
    return Plan(
        dialect=dialect,
        as_of=as_of,
        steps=steps,
        worklist_sql=final,
        query=f"WITH {ctes}\n{final}",
        codes=codes,
        schema=schema,
        order=order,
    )


def _worklist_sql(codes: Iterable[str]) -> str:
    """All rules' rows, with patient id, clinic, severity and as_of, in the worklist's types."""
    types = {f.name: sql_type(f) for f in WORKLIST_SCHEMA}
    parts = [
        f"""SELECT patient_key, '{code}' AS code, CAST(evidence_date AS DATE) AS evidence_date,
                CAST(evidence_days AS BIGINT) AS evidence_days,
                CAST(evidence_value AS DOUBLE) AS evidence_value,
                CAST(evidence_note AS VARCHAR) AS evidence_note
            FROM rule_{code.lower()}"""
        for code in codes
    ]
    union = (
        "\nUNION ALL\n".join(parts)
        if parts
        else (
            "SELECT CAST(NULL AS BIGINT) AS patient_key, CAST(NULL AS VARCHAR) AS code,"
            " CAST(NULL AS DATE) AS evidence_date, CAST(NULL AS BIGINT) AS evidence_days,"
            " CAST(NULL AS DOUBLE) AS evidence_value, CAST(NULL AS VARCHAR) AS evidence_note"
            " FROM kb_finding WHERE 1 = 0"
        )
    )
    return f"""
    SELECT CAST(p.patient_id AS {types["patient_id"]}) AS patient_id,
        CAST(p.clinic_id AS {types["clinic_id"]}) AS clinic_id,
        f.code, kf.severity, CAST(:as_of AS DATE) AS as_of,
        f.evidence_date, f.evidence_days, f.evidence_value,
        f.evidence_note
    FROM ({union}) AS f
    JOIN kb_finding kf ON kf.code = f.code
    JOIN patients p ON p.patient_key = f.patient_key
    WHERE p.deceased_date IS NULL OR p.deceased_date > CAST(:as_of AS DATE)
    """


def parameters(knowledge: Knowledge, as_of: date) -> dict[str, Any]:
    """The scalar parameters the SQL may name: ``as_of``, every timing, the anaemia cut-offs and
    the formulary's implausible-dose factor."""
    params: dict[str, Any] = {"as_of": as_of}
    params.update({t.name: t.value for t in knowledge.timings})
    params.update({f"anaemia_{a.group}_below": a.hb_below_g_per_l for a in knowledge.anaemia})
    params["implausible_factor"] = knowledge.formulary.implausible_factor
    return params


def knowledge_steps(knowledge: Knowledge) -> dict[str, str]:
    """The knowledge base as small tables (``kb_*``), written as typed VALUES lists."""
    f = knowledge.formulary
    protocols: list[Row] = []
    stages: list[Row] = []
    for ordinal, p in enumerate(knowledge.protocols):
        w = p.maintenance.window
        first = p.loading[0].window if p.loading else None  # oral protocols have no loading
        lo, hi = p.dose_range_mcg if p.dose_range_mcg is not None else (None, None)
        protocols.append(
            (
                p.id,
                ordinal,
                p.kind,
                p.jurisdiction,
                p.product,
                p.neurological,
                p.dietary_only,
                p.jurisdiction_default,
                lo,
                hi,
                p.loading_end,
                p.loading_doses_minimum,
                p.lifelong_when_chronic,
                w.min_interval_days,
                w.due_interval_days,
                w.overdue_after_days,
                p.maintenance.interval_range_days[1],
                None if first is None else first.overdue_after_days - first.due_interval_days,
            )
        )
        seen = 0
        for s in p.loading:
            stages.append(
                (
                    p.id,
                    seen + 1,
                    None if s.doses is None else seen + s.doses,
                    s.window.min_interval_days,
                    s.window.due_interval_days,
                    s.window.overdue_after_days,
                )
            )
            seen += s.doses or 0
    tables: dict[str, tuple[list[tuple[str, str]], list[Row]]] = {
        "kb_analyte": (
            [
                ("code", "VARCHAR"),
                ("canonical_unit", "VARCHAR"),
                ("deficient_below", "DOUBLE"),
                ("normal_above", "DOUBLE"),
                ("raised_above", "DOUBLE"),
                ("worse", "VARCHAR"),
                ("follow_up", "BOOLEAN"),
            ],
            [
                (
                    a.code,
                    a.canonical_unit,
                    a.deficient_below,
                    a.normal_above,
                    a.raised_above,
                    a.worse,
                    a.follow_up,
                )
                for a in knowledge.analytes
            ],
        ),
        "kb_unit_threshold": (
            [
                ("code", "VARCHAR"),
                ("unit", "VARCHAR"),
                ("deficient_below", "DOUBLE"),
                ("normal_above", "DOUBLE"),
            ],
            [
                (a.code, t.unit, t.deficient_below, t.normal_above)
                for a in knowledge.analytes
                for t in a.thresholds
            ],
        ),
        "kb_plausible": (
            [("code", "VARCHAR"), ("unit", "VARCHAR"), ("low", "DOUBLE"), ("high", "DOUBLE")],
            [(a.code, r.unit, r.low, r.high) for a in knowledge.analytes for r in a.plausible],
        ),
        "kb_cause": (
            [("code", "VARCHAR"), ("chronic", "BOOLEAN"), ("malabsorptive", "BOOLEAN")],
            [(c.code, c.chronic, c.malabsorptive) for c in knowledge.causes],
        ),
        "kb_medication": (
            [("code", "VARCHAR"), ("risk_factor", "BOOLEAN")],
            [(m.code, m.risk_factor) for m in knowledge.medications],
        ),
        "kb_status": (
            [("status", "VARCHAR"), ("precedence", "INTEGER")],
            [(st, knowledge.status_rank(st)) for st in knowledge.symptom_statuses],
        ),
        "kb_reporter": (
            [("code", "VARCHAR"), ("ends_neuro_loading", "BOOLEAN")],
            [(r.code, r.ends_neuro_loading) for r in knowledge.reporters],
        ),
        "kb_symptom": (
            [("code", "VARCHAR"), ("neurological", "BOOLEAN")],
            [(s.code, s.neurological) for s in knowledge.symptoms],
        ),
        "kb_adverse_event": (
            [("code", "VARCHAR"), ("kind", "VARCHAR")],
            [(e.code, e.kind) for e in knowledge.adverse_events],
        ),
        "kb_product": ([("product", "VARCHAR")], [(p.id,) for p in f.products]),
        "kb_route": (
            [
                ("product", "VARCHAR"),
                ("route", "VARCHAR"),
                ("min_mcg", "DOUBLE"),
                ("max_mcg", "DOUBLE"),
                ("off_label", "BOOLEAN"),
            ],
            [
                (p.id, r.route, r.min_mcg, r.max_mcg, r.off_label)
                for p in f.products
                for r in p.routes
            ],
        ),
        "kb_not_for_deficiency": (
            [("product", "VARCHAR"), ("route", "VARCHAR"), ("min_mcg", "DOUBLE")],
            [(p.id, n.route, n.min_mcg) for p in f.products for n in p.not_for_deficiency],
        ),
        "kb_protocol": (
            [
                ("protocol_id", "VARCHAR"),
                ("ordinal", "INTEGER"),
                ("kind", "VARCHAR"),
                ("jurisdiction", "VARCHAR"),
                ("product", "VARCHAR"),
                ("neurological_rule", "VARCHAR"),
                ("dietary_rule", "VARCHAR"),
                ("jurisdiction_default", "BOOLEAN"),
                ("dose_min_mcg", "DOUBLE"),
                ("dose_max_mcg", "DOUBLE"),
                ("loading_end", "VARCHAR"),
                ("loading_doses_minimum", "INTEGER"),
                ("lifelong_when_chronic", "BOOLEAN"),
                ("maintenance_min_days", "INTEGER"),
                ("maintenance_due_days", "INTEGER"),
                ("maintenance_overdue_days", "INTEGER"),
                ("interval_max_days", "INTEGER"),
                ("first_dose_grace_days", "INTEGER"),
            ],
            protocols,
        ),
        "kb_loading_stage": (
            [
                ("protocol_id", "VARCHAR"),
                ("first_dose_no", "INTEGER"),
                ("last_dose_no", "INTEGER"),
                ("min_days", "INTEGER"),
                ("due_days", "INTEGER"),
                ("overdue_days", "INTEGER"),
            ],
            stages,
        ),
        "kb_finding": (
            [("code", "VARCHAR"), ("severity", "VARCHAR")],
            [(s.code, s.severity) for s in knowledge.findings],
        ),
    }
    return {name: _values_sql(cols, rows) for name, (cols, rows) in tables.items()}


def _values_sql(columns: list[tuple[str, str]], rows: list[Row]) -> str:
    if not rows:
        casts = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns)
        return f"SELECT {casts} WHERE 1 = 0"
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    casts = ", ".join(f"CAST(c{i} AS {t}) AS {c}" for i, (c, t) in enumerate(columns))
    values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    return f"SELECT {casts} FROM (VALUES {values}) AS t({aliases})"


def _literal(value: Any) -> str:
    return _literal_expr(value).sql(dialect="duckdb")


def _literal_expr(value: Any) -> exp.Expression:
    """A typed SQL literal: dates as DATE, floats as DOUBLE (never DECIMAL), text quoted."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if value.is_integer():
            return exp.Literal.number(int(value))
        return exp.cast(exp.Literal.number(repr(value)), exp.DataType.Type.DOUBLE)
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


_TOKEN = "b12plan-param:"
_TOKEN_RE = re.compile(r"'b12plan-param:(\w+)'")


@cache
def _template(sql: str, dialect: str) -> str:
    """``sql`` in ``dialect`` with each ``:name`` as a marked string, transpiled once and kept."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    for node in list(tree.find_all(exp.Placeholder)):
        node.replace(exp.Literal.string(_TOKEN + node.name))
    return tree.sql(dialect=dialect, copy=False)


def transpile(sql: str, dialect: str, params: dict[str, Any]) -> str:
    """Fill ``:name`` placeholders with typed literals and write ``sql`` (DuckDB) in ``dialect``.

    Parsing and generating are slow, so each text is transpiled once per dialect with its
    placeholders marked; filling them is a substitution of literals written for that dialect.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise KeyError(f"SQL names unknown parameter :{name}")
        return str(_literal_expr(params[name]).sql(dialect=dialect))

    return _TOKEN_RE.sub(fill, _template(sql, dialect))
