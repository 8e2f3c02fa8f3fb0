"""``b12plan population``: generate cohorts, load PostgreSQL, run the monitoring rules, summarise.

Thin: options are checked here (a bad one exits 2 naming it), the work is done by
``b12plan.population``. The knowledge base is ``$B12PLAN_KNOWLEDGE_DIR`` when set (a clinic's
reviewed copy), else the shipped one; ``from-store`` uses the service layer's. duckdb, pyarrow,
psycopg and pyspark are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from b12plan.population.worklist import Summary

population_app = typer.Typer(
    name="population",
    help="Monitor every patient at once: cohorts, SQL rules on DuckDB, PostgreSQL, Spark.",
    no_args_is_help=True,
)

P = ParamSpec("P")
R = TypeVar("R")
EXIT_INVALID = 2


# The options every engine-running command shares (``run``, ``due``), checked together by
# ``_check_engine_options``.
EngineOption = Annotated[str, typer.Option("--engine", help="duckdb (default), postgres or spark.")]
InputOption = Annotated[
    Path | None, typer.Option("--input", help="Folder of Parquet tables (duckdb, spark).")
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url", help="PostgreSQL URL (postgres).", envvar="B12PLAN_DATABASE_URL"
    ),
]
SchemaOption = Annotated[str, typer.Option("--schema", help="PostgreSQL schema.")]
SparkMasterOption = Annotated[
    str, typer.Option("--spark-master", help="local[*] or a cluster URL.")
]


def _bad(option: str, message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint=f"'{option}'")


def _guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Input problems found while working exit 2 with the option named; others exit 1, briefly."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from b12plan.cli.steps import InputError as SettingError
        from b12plan.population.engines import InputError
        from b12plan.population.worklist import WorklistError

        try:
            return command(*args, **kwargs)
        except SettingError as exc:
            for line in exc.lines:
                sys.stderr.write(line + "\n")
            raise typer.Exit(EXIT_INVALID) from None
        except (InputError, WorklistError) as exc:
            sys.stderr.write(f"b12plan population: {exc}\n")
            raise typer.Exit(EXIT_INVALID) from None
        except (typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt):
            raise
        except Exception as exc:
            sys.stderr.write(f"b12plan population: failed ({type(exc).__name__}): {exc}\n")
            raise typer.Exit(1) from None

    return run


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _bad(option, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


@population_app.command()
@_guarded
def generate(
    patients: Annotated[int, typer.Option("--patients", help="How many patients.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet tables.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same cohort.")] = 0,
    end: Annotated[
        str, typer.Option("--end", help="Histories run up to this date (YYYY-MM-DD).")
    ] = "2026-03-01",
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Patients generated per chunk.")
    ] = 100_000,
) -> None:
    """Write a synthetic cohort (one Parquet file per table) of realistic B12 histories."""
    from rich.progress import Progress

    from b12plan.cli.steps import knowledge_for
    from b12plan.population.generate import generate as run_generate

    if patients < 1:
        raise _bad("--patients", "must be at least 1")
    if chunk_size < 1:
        raise _bad("--chunk-size", "must be at least 1")
    if out.exists() and not out.is_dir():
        raise _bad("--out", f"{out} exists and is not a folder")
    end_date = _date(end, "--end")
    console = _console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating", total=patients)
        stats = run_generate(
            patients,
            out,
            knowledge_for(None),
            seed=seed,
            end=end_date,
            chunk_size=chunk_size,
            progress=lambda done: progress.update(task, completed=done),
        )
    from rich.table import Table

    table = Table(title=f"{stats.patients:,} patients in {out} ({stats.seconds:.1f} s)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in stats.rows.items():
        table.add_row(name, f"{rows:,}")
    table.add_row("total", f"{sum(stats.rows.values()):,}", style="bold")
    console.print(table)
    console.print(f"{stats.bytes_on_disk / 1e6:.1f} MB on disk")


@population_app.command("from-cases")
@_guarded
def from_cases(
    cases: Annotated[
        list[Path], typer.Argument(help="Case JSON files (contract v1), or folders of them.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet tables.")],
    clinic: Annotated[
        str | None, typer.Option("--clinic", help="Clinic id for these patients.")
    ] = None,
) -> None:
    """Turn contract case files into the population tables (units made canonical)."""
    import json

    from b12plan.cli.steps import knowledge_for
    from b12plan.contract import CaseError, parse_case
    from b12plan.population.convert import CohortMember, cohort_tables, write_tables

    files: list[Path] = []
    for path in cases:
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise _bad("CASES", f"{path} does not exist")
    if not files:
        raise _bad("CASES", "no .json case files found")
    k = knowledge_for(None)
    members = []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            case = parse_case(data.get("case", data) if isinstance(data, dict) else data, k)
        except (OSError, ValueError) as exc:
            lines = exc.lines() if isinstance(exc, CaseError) else [str(exc)]
            raise _bad("CASES", f"{path}: {'; '.join(lines)}") from None
        members.append(CohortMember(case.patient.id or path.stem, case, clinic_id=clinic))
    try:
        tables = cohort_tables(members, k)
    except ValueError as exc:
        raise _bad("CASES", str(exc)) from None
    write_tables(tables, out)
    _console().print(f"wrote {len(members):,} patients to {out}")


@population_app.command("from-store")
@_guarded
def from_store(
    out: Annotated[Path, typer.Option("--out", help="Folder for the Parquet tables.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="The records store: sqlite:///PATH or postgresql+psycopg://... (default:"
            " $B12PLAN_DATABASE_URL, else sqlite:///./b12plan.db)",
            show_default=False,
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Day that chooses each order in force (default: today)."),
    ] = None,
    clinic: Annotated[
        str | None, typer.Option("--clinic", help="Only this clinic's patients.")
    ] = None,
) -> None:
    """The records store's patients as population tables (current records, canonical units)."""
    from rich.progress import Progress

    from b12plan.cli.records import records_services, settings_for
    from b12plan.service.cohort import CohortExportError, UnknownClinic, export_cohort

    settings = settings_for(database_url)
    console = _console()
    with records_services(settings) as services, Progress(console=console, transient=True) as bar:
        day = services.clock.today() if as_of is None else _date(as_of, "--as-of")
        task = bar.add_task("reading the store", total=None)
        try:
            result = export_cohort(
                services.db,
                services.knowledge,
                out,
                as_of=day,
                clinic_id=clinic,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except UnknownClinic as exc:
            raise _bad("--clinic", str(exc)) from None
        except CohortExportError as exc:
            sys.stderr.write(f"b12plan population: {exc}\n")
            raise typer.Exit(1) from None
    console.print(
        f"wrote {result.patients:,} patients ({sum(result.rows.values()):,} rows) to {out}"
        f" (orders in force on {day})"
    )
    if result.without_demographics:
        console.print(
            f"left out {result.without_demographics:,} patients without current demographics"
        )


@population_app.command()
@_guarded
def load(
    input_dir: Annotated[Path, typer.Option("--input", help="Folder of Parquet tables.")],
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="PostgreSQL URL.", envvar="B12PLAN_DATABASE_URL"),
    ] = None,
    schema: Annotated[str, typer.Option("--schema", help="Schema to (re)create tables in.")] = (
        "b12plan_population"
    ),
) -> None:
    """Copy a folder of Parquet tables into PostgreSQL (tables in one schema, replaced)."""
    from rich.progress import Progress

    from b12plan.population.engines import load_postgres
    from b12plan.population.tables import TABLES

    if database_url is None:
        raise _bad("--database-url", "needed (or set B12PLAN_DATABASE_URL)")
    console = _console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"loading into {schema}", total=len(TABLES))
        counts = load_postgres(
            input_dir, database_url, schema, on_table=lambda _: progress.advance(task)
        )
    console.print(f"loaded {sum(counts.values()):,} rows into {len(counts)} tables in {schema}")


def _check_engine_options(
    engine: str, out: Path, input_dir: Path | None, database_url: str | None
) -> None:
    """The options every engine run shares: a known engine, an output format, and its input."""
    from b12plan.population.engines import ENGINES
    from b12plan.population.worklist import FORMATS

    if engine not in ENGINES:
        raise _bad("--engine", f"expected one of {', '.join(ENGINES)}, not {engine!r}")
    if out.suffix.lower() not in FORMATS:
        raise _bad("--out", f"{out} must end in .parquet or .csv")
    if engine in ("duckdb", "spark") and input_dir is None:
        raise _bad("--input", f"the {engine} engine reads a folder of Parquet tables")
    if engine == "postgres" and database_url is None:
        raise _bad("--database-url", "the postgres engine needs a database URL")


@population_app.command()
@_guarded
def run(
    as_of: Annotated[str, typer.Option("--as-of", help="Evaluation date (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="worklist.parquet or worklist.csv")],
    engine: EngineOption = "duckdb",
    input_dir: InputOption = None,
    database_url: DatabaseUrlOption = None,
    schema: SchemaOption = "b12plan_population",
    spark_master: SparkMasterOption = "local[*]",
    codes: Annotated[
        str | None, typer.Option("--codes", help="Comma-separated finding codes (default all).")
    ] = None,
    show: Annotated[int, typer.Option("--show", help="Worklist rows to print.")] = 20,
) -> None:
    """Run the monitoring rules for every patient and write the worklist."""
    from rich.progress import Progress

    from b12plan.cli.steps import knowledge_for
    from b12plan.population.engines import open_engine
    from b12plan.population.plan import build_plan, rule_codes
    from b12plan.population.worklist import summarise, write_worklist

    when = _date(as_of, "--as-of")
    _check_engine_options(engine, out, input_dir, database_url)
    chosen = None
    if codes is not None:
        chosen = [c.strip().upper() for c in codes.split(",") if c.strip()]
        unknown = sorted(set(chosen) - set(rule_codes()))
        if unknown or not chosen:
            raise _bad("--codes", f"no SQL rule for {', '.join(unknown) or '(none given)'}")
    if show < 0:
        raise _bad("--show", "must be 0 or more")
    plan = build_plan(knowledge_for(None), when, engine, chosen)
    console = _console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{engine}: starting", total=None)

        def step_done(name: str) -> None:
            progress.update(task, description=f"{engine}: {name} done")

        with open_engine(
            engine,
            input_dir=input_dir,
            database_url=database_url,
            schema=schema,
            spark_master=spark_master,
        ) as runner:
            worklist = runner.run(plan, on_step=step_done)
        progress.update(task, description="writing the worklist")
        write_worklist(worklist, out)
    _render_summary(console, summarise(worklist), f"worklist as of {when} ({engine})")
    if show:
        _render_rows(console, worklist.slice(0, show).to_pylist())
    console.print(f"wrote {worklist.num_rows:,} rows to {out}")


@population_app.command()
@_guarded
def due(
    as_of: Annotated[str, typer.Option("--as-of", help="Evaluation date (YYYY-MM-DD).")],
    out: Annotated[Path, typer.Option("--out", help="due.csv or due.parquet")],
    days: Annotated[
        int, typer.Option("--days", help="List next doses due within this many days.")
    ] = 14,
    engine: EngineOption = "duckdb",
    input_dir: InputOption = None,
    database_url: DatabaseUrlOption = None,
    schema: SchemaOption = "b12plan_population",
    spark_master: SparkMasterOption = "local[*]",
    show: Annotated[int, typer.Option("--show", help="Rows to print.")] = 20,
) -> None:
    """The booking list: patients whose next dose falls due within --days days of --as-of."""
    from b12plan.cli.steps import knowledge_for
    from b12plan.population.engines import open_engine
    from b12plan.population.plan import build_due_plan
    from b12plan.population.tables import DUE_SCHEMA
    from b12plan.population.worklist import write_worklist

    when = _date(as_of, "--as-of")
    if days < 0:
        raise _bad("--days", "must be 0 or more")
    _check_engine_options(engine, out, input_dir, database_url)
    if show < 0:
        raise _bad("--show", "must be 0 or more")
    plan = build_due_plan(knowledge_for(None), when, engine, days=days)
    with open_engine(
        engine,
        input_dir=input_dir,
        database_url=database_url,
        schema=schema,
        spark_master=spark_master,
    ) as runner:
        listed = runner.run(plan)
    write_worklist(listed, out, DUE_SCHEMA)
    console = _console()
    if show:
        _render_due(console, listed.slice(0, show).to_pylist())
    console.print(
        f"{listed.num_rows:,} patients due {when} to {when + dt.timedelta(days=days)}; wrote {out}"
    )


@population_app.command()
@_guarded
def summary(
    worklist: Annotated[Path, typer.Argument(help="worklist.parquet or worklist.csv")],
    top: Annotated[int, typer.Option("--top", help="Clinics to list.")] = 15,
) -> None:
    """Counts per finding code and per clinic."""
    from b12plan.population.worklist import read_worklist, summarise

    if top < 0:
        raise _bad("--top", "must be 0 or more")
    table = read_worklist(worklist)
    _render_summary(_console(), summarise(table), str(worklist), top=top)


@population_app.command("sql")
@_guarded
def show_sql(
    as_of: Annotated[str, typer.Option("--as-of", help="Evaluation date (YYYY-MM-DD).")],
    dialect: Annotated[
        str, typer.Option("--dialect", help="duckdb, postgres or spark.")
    ] = "duckdb",
) -> None:
    """Print the rules as the chosen engine runs them (parameters filled in)."""
    from b12plan.cli.steps import knowledge_for
    from b12plan.population.plan import DIALECTS, build_plan

    if dialect not in DIALECTS:
        raise _bad("--dialect", f"expected one of {', '.join(DIALECTS)}, not {dialect!r}")
    plan = build_plan(knowledge_for(None), _date(as_of, "--as-of"), dialect)
    for step in plan.steps:
        sys.stdout.write(f"-- {step.name}\n{step.sql};\n\n")
    sys.stdout.write(f"-- worklist\n{plan.worklist_sql.strip()};\n")


_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _render_summary(console: Console, s: Summary, title: str, *, top: int = 10) -> None:
    from rich.table import Table

    codes = Table(title=f"{title}: {s.findings:,} findings for {s.patients:,} patients")
    codes.add_column("code")
    codes.add_column("severity")
    codes.add_column("patients", justify="right")
    for c in s.codes:
        codes.add_row(c.code, c.severity, f"{c.patients:,}", style=_STYLE.get(c.severity, ""))
    console.print(codes)
    if top and s.clinics:
        shown = s.clinics[:top]
        clinics = Table(title=f"clinics ({len(shown)} of {len(s.clinics):,}, most critical first)")
        for name in ("clinic", "patients", "critical", "warning", "info"):
            clinics.add_column(name, justify="left" if name == "clinic" else "right")
        for k in shown:
            clinics.add_row(
                k.clinic_id, f"{k.patients:,}", f"{k.critical:,}", f"{k.warning:,}", f"{k.info:,}"
            )
        console.print(clinics)


def _render_rows(console: Console, rows: list[dict[str, object]]) -> None:
    from rich.table import Table

    table = Table(title=f"first {len(rows)} rows")
    for name in ("patient", "clinic", "code", "severity", "date", "days", "value", "note"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            *(
                "" if r[k] is None else str(r[k])
                for k in (
                    "patient_id",
                    "clinic_id",
                    "code",
                    "severity",
                    "evidence_date",
                    "evidence_days",
                    "evidence_value",
                    "evidence_note",
                )
            ),
            style=_STYLE.get(str(r["severity"]), ""),
        )
    console.print(table)


def _render_due(console: Console, rows: list[dict[str, object]]) -> None:
    from rich.table import Table

    columns = ("patient_id", "clinic_id", "due", "earliest", "overdue_after", "phase")
    table = Table(title=f"first {len(rows)} rows")
    for name in columns:
        table.add_column(name)
    for r in rows:
        table.add_row(*("" if r[k] is None else str(r[k]) for k in columns))
    console.print(table)


__all__ = ["population_app"]
