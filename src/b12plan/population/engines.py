"""Three engines, one plan: DuckDB over Parquet, PostgreSQL tables, PySpark over Parquet.

Each engine creates the plan's steps in order (a view, or a temporary table or cached view for
the steps several rules read), runs the worklist query and hands back Arrow in the worklist
schema, sorted by patient and code, so the three results can be compared cell by cell.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from b12plan.population.plan import Plan
from b12plan.population.tables import TABLES, WORKLIST_SCHEMA, sql_type

ENGINES = ("duckdb", "postgres", "spark")
DEFAULT_SCHEMA = "b12plan_population"
StepHook = Callable[[str], None]


class InputError(ValueError):
    """The input cannot be read as the table contract; the message names what is wrong."""


class Engine(Protocol):
    dialect: str

    def run(self, plan: Plan, on_step: StepHook | None = None) -> pa.Table: ...

    def close(self) -> None: ...


def normalise(
    table: pa.Table,
    *,
    presorted: bool = False,
    schema: pa.Schema = WORKLIST_SCHEMA,
    order: tuple[str, ...] = ("patient_id", "code"),
) -> pa.Table:
    """``schema`` (the worklist's by default), rows sorted by ``order`` (patient and code).

    ``presorted``: the engine already sorted by ``order`` in byte order, as Arrow does.
    """
    table = table.select(schema.names).cast(schema)
    if "evidence_value" in schema.names:
        # evidence values to 3 decimals: engines may print the last binary digit differently
        rounded = pc.round(table["evidence_value"], 3)
        table = table.set_column(
            schema.get_field_index("evidence_value"), "evidence_value", rounded
        )
    if presorted:
        return table
    return table.sort_by([(column, "ascending") for column in order])


def _normalise_for(plan: Plan, table: pa.Table, *, presorted: bool = False) -> pa.Table:
    return normalise(table, presorted=presorted, schema=plan.schema, order=plan.order)


def table_paths(directory: Path) -> dict[str, list[Path]]:
    """The Parquet file(s) of each contract table: ``<name>.parquet`` or ``<name>/*.parquet``."""
    if not directory.is_dir():
        raise InputError(f"--input: {directory} is not a directory")
    found: dict[str, list[Path]] = {}
    for name in TABLES:
        single = directory / f"{name}.parquet"
        if single.is_file():
            found[name] = [single]
        elif (directory / name).is_dir() and any((directory / name).glob("*.parquet")):
            found[name] = sorted((directory / name).glob("*.parquet"))
        else:
            raise InputError(f"--input: {directory} has no {name}.parquet")
        _check_columns(name, pq.read_schema(found[name][0]))
    return found


def _check_columns(name: str, schema: pa.Schema) -> None:
    missing = [f.name for f in TABLES[name] if f.name not in schema.names]
    if missing:
        raise InputError(f"--input: {name}.parquet lacks column(s) {', '.join(missing)}")


# -- DuckDB ---------------------------------------------------------------------------------------
class DuckDBEngine:
    """Embedded: views over the Parquet files, the plan as one query."""

    dialect = "duckdb"

    def __init__(
        self, directory: Path, *, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        import duckdb

        paths = table_paths(directory)
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET preserve_insertion_order = false")  # less memory; we sort
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit is not None:
            self.con.execute("SET memory_limit = ?", [memory_limit])
        for name, files in paths.items():
            listing = ", ".join(_quote(str(f)) for f in files)
            self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}])")

    def run(self, plan: Plan, on_step: StepHook | None = None) -> pa.Table:
        """One statement: DuckDB materialises the shared steps itself and runs them in parallel."""
        _same_dialect(plan, self.dialect)
        # DuckDB sorts in parallel, and compares text by bytes as Arrow does
        query = f"SELECT * FROM ({plan.query}) AS w ORDER BY {', '.join(plan.order)}"
        table = self.con.sql(query).to_arrow_table()
        if on_step:
            on_step("worklist")
        return _normalise_for(plan, table, presorted=True)

    def close(self) -> None:
        self.con.close()


# -- PostgreSQL -----------------------------------------------------------------------------------
def psycopg_url(url: str) -> str:
    """SQLAlchemy-style URLs (``postgresql+psycopg://``) work too: psycopg wants the plain form."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


def _check_schema_name(schema: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise InputError(f"--schema: {schema!r} is not a plain lower-case identifier")
    return schema


def load_postgres(
    directory: Path,
    url: str,
    schema: str = DEFAULT_SCHEMA,
    *,
    batch_rows: int = 200_000,
    on_table: StepHook | None = None,
) -> dict[str, int]:
    """Create the contract's tables in ``schema`` (replacing them) and copy the Parquet rows in.

    Rows stream in batches through ``COPY ... FROM STDIN`` as CSV, so memory stays flat.
    """
    import psycopg

    _check_schema_name(schema)
    paths = table_paths(directory)
    counts: dict[str, int] = {}
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name, contract in TABLES.items():
            cols = ", ".join(f"{f.name} {_pg_type(f)}" for f in contract)
            conn.execute(f"DROP TABLE IF EXISTS {schema}.{name} CASCADE")
            conn.execute(f"CREATE TABLE {schema}.{name} ({cols})")
            columns = ", ".join(contract.names)
            counts[name] = 0
            with conn.cursor().copy(
                f"COPY {schema}.{name} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy:
                for path in paths[name]:
                    for batch in pq.ParquetFile(path).iter_batches(
                        batch_size=batch_rows, columns=contract.names
                    ):
                        buf = io.BytesIO()
                        pacsv.write_csv(
                            pa.Table.from_batches([batch]).cast(contract),
                            buf,
                            pacsv.WriteOptions(include_header=True, quoting_style="needed"),
                        )
                        copy.write(_strip_header_after_first(buf.getvalue(), counts[name]))
                        counts[name] += batch.num_rows
            conn.execute(f"CREATE INDEX ON {schema}.{name} (patient_key)")
            conn.execute(f"ANALYZE {schema}.{name}")
            if on_table:
                on_table(name)
    return counts


def _strip_header_after_first(data: bytes, rows_so_far: int) -> bytes:
    """COPY reads one header: later batches go in without theirs."""
    if rows_so_far == 0:
        return data
    return data.split(b"\n", 1)[1] if b"\n" in data else b""


_PG_TYPES = {
    "VARCHAR": "TEXT",
    "DOUBLE": "DOUBLE PRECISION",
    "DATE": "DATE",
    "INTEGER": "INTEGER",
    "BIGINT": "BIGINT",
    "BOOLEAN": "BOOLEAN",
}


def _pg_type(field: pa.Field) -> str:
    return _PG_TYPES[sql_type(field)]


class PostgresEngine:
    """The rules against tables in a schema; shared steps become temporary tables."""

    dialect = "postgres"

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA, *, work_mem: str = "256MB") -> None:
        import psycopg

        self.url = psycopg_url(url)
        self.schema = _check_schema_name(schema)
        self.work_mem = work_mem
        try:
            with psycopg.connect(self.url, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                    " UNION SELECT table_name FROM information_schema.views"
                    " WHERE table_schema = %s",
                    (self.schema, self.schema),
                ).fetchall()
        except psycopg.OperationalError as exc:
            raise InputError(f"--database-url: cannot connect ({exc})") from exc
        missing = sorted(set(TABLES) - {r[0] for r in rows})
        if missing:
            raise InputError(
                f"--schema: {self.schema} lacks table(s) {', '.join(missing)}"
                " (load them with `b12plan population load`)"
            )

    def run(self, plan: Plan, on_step: StepHook | None = None) -> pa.Table:
        import psycopg

        _same_dialect(plan, self.dialect)
        with psycopg.connect(self.url) as conn:
            conn.execute(f"SET search_path TO {self.schema}")
            conn.execute(f"SET work_mem = '{self.work_mem}'")
            for step in plan.steps:
                if step.materialize:
                    conn.execute(f"CREATE TEMP TABLE {step.name} AS {step.sql}")
                    conn.execute(f"ANALYZE {step.name}")
                else:
                    conn.execute(f"CREATE TEMP VIEW {step.name} AS {step.sql}")
                if on_step:
                    on_step(step.name)
            # Every join left is patient_key against whole tables, and row estimates after the
            # rules' aggregates are often 1: a nested loop then re-runs a rule once per patient
            # (at 100,000 patients MAINTENANCE_APPROPRIATE ran for minutes instead of seconds).
            conn.execute("SET enable_nestloop = off")
            buf = io.BytesIO()
            with conn.cursor().copy(
                f"COPY ({plan.worklist_sql}) TO STDOUT WITH (FORMAT csv, HEADER true)"
            ) as copy:
                for chunk in copy:
                    buf.write(chunk)
            conn.rollback()  # temporary objects go with the transaction
        buf.seek(0)
        table = pacsv.read_csv(
            buf,
            convert_options=pacsv.ConvertOptions(
                column_types=plan.schema, strings_can_be_null=True
            ),
        )
        return _normalise_for(plan, table)

    def close(self) -> None:
        """Nothing stays open between runs."""


# -- Spark ----------------------------------------------------------------------------------------
def spark_session(
    master: str = "local[*]", *, driver_memory: str = "4g", shuffle_partitions: int = 8
) -> Any:
    """A SparkSession for the rules: no UI, few shuffle partitions, UTC, Arrow transfers.

    A master URL (``spark://host:7077``) works the same as ``local[*]``.
    """
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(master)
        .appName("b12plan-population")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.adaptive.enabled", "true")
        # Broadcast only the knowledge-base tables: at 1,000,000 patients Spark's size estimates
        # let per-patient steps under the 10 MB default and the driver ran out of memory.
        .config("spark.sql.autoBroadcastJoinThreshold", "1MB")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine:
    """PySpark over the same Parquet files, step by step.

    Shared steps are checkpointed (``localCheckpoint``): later steps then read a stored relation
    instead of re-deriving it. Catalyst inlines common table expressions and does not match
    cached views whose SQL holds CTEs, so without this the plan grows with every reference.
    """

    dialect = "spark"

    def __init__(
        self, directory: Path, session: Any | None = None, *, master: str = "local[*]"
    ) -> None:
        paths = table_paths(directory)
        self.spark = session if session is not None else spark_session(master)
        self._owns_session = session is None
        for name, files in paths.items():
            self.spark.read.parquet(*[str(f) for f in files]).createOrReplaceTempView(name)

    def run(self, plan: Plan, on_step: StepHook | None = None) -> pa.Table:
        _same_dialect(plan, self.dialect)
        stored = []
        try:
            for step in plan.steps:
                frame = self.spark.sql(step.sql)
                if step.materialize:
                    frame = frame.localCheckpoint(eager=True)
                    stored.append(frame)
                frame.createOrReplaceTempView(step.name)
                if on_step:
                    on_step(step.name)
            table = self.spark.sql(plan.worklist_sql).toArrow()
        finally:
            for frame in stored:
                frame.unpersist()
            for step in plan.steps:
                self.spark.catalog.dropTempView(step.name)
        return _normalise_for(plan, table)

    def close(self) -> None:
        if self._owns_session:
            self.spark.stop()


@contextmanager
def open_engine(
    name: str,
    *,
    input_dir: Path | None = None,
    database_url: str | None = None,
    schema: str = DEFAULT_SCHEMA,
    spark_master: str = "local[*]",
    spark: Any | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Iterator[Engine]:
    """The named engine over its input, closed afterwards."""
    engine: Engine
    if name == "duckdb":
        if input_dir is None:
            raise InputError("--input: the duckdb engine reads a folder of Parquet files")
        engine = DuckDBEngine(input_dir, threads=threads, memory_limit=memory_limit)
    elif name == "spark":
        if input_dir is None:
            raise InputError("--input: the spark engine reads a folder of Parquet files")
        engine = SparkEngine(input_dir, spark, master=spark_master)
    elif name == "postgres":
        if database_url is None:
            raise InputError("--database-url: the postgres engine needs a database URL")
        engine = PostgresEngine(database_url, schema)
    else:
        raise InputError(f"--engine: expected one of {', '.join(ENGINES)}, not {name!r}")
    try:
        yield engine
    finally:
        engine.close()


def _same_dialect(plan: Plan, dialect: str) -> None:
    if plan.dialect != dialect:
        raise ValueError(f"plan is for {plan.dialect}, engine runs {dialect}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
