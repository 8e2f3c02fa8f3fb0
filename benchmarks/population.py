"""Population monitoring: generation, the DuckDB worklist, PostgreSQL and Spark side by side.

One process runs, in order: synthetic cohort generation (time, rows, size on disk); a "floor"
(one DuckDB scan reading every column of every table once); the worklist on DuckDB; the same rules
on PostgreSQL (tables loaded first, load timed apart) and on Spark local mode (session start
timed apart). Peak resident memory is sampled during each phase. Every worklist is compared with
DuckDB's, row for row.

    .venv/bin/python benchmarks/population.py                        # 100,000 patients
    .venv/bin/python benchmarks/population.py --patients 1000000 --engines duckdb
    .venv/bin/python benchmarks/population.py --patients 10000       # quick, all three engines

Targets at 1,000,000 patients: DuckDB worklist <= 10 s on 2 cores, peak RSS <= 4 GB.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class PeakRss:
    """Samples this process's resident set (``/proc/self/status``) to find each phase's peak."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def current() -> int:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(self.every)

    @contextmanager
    def phase(self) -> Iterator[None]:
        self.peak = self.current()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.current())


@dataclass
class Row:
    phase: str
    seconds: float
    rss: int | None = None
    rows: int | None = None
    note: str = ""
    compare: bool = False  # a worklist run: ratio against DuckDB's
    extra: dict[str, Any] = field(default_factory=dict)


def timed(rss: PeakRss, fn: Callable[[], Any]) -> tuple[Any, float, int]:
    with rss.phase():
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
    return out, seconds, rss.peak


def floor_scan(folder: Path, threads: int) -> int:
    """Read every column of every table once (the least any engine must do)."""
    import duckdb

    from b12plan.population.engines import table_paths
    from b12plan.population.tables import TABLES

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    total = 0
    for name, files in table_paths(folder).items():
        # hash() of every column forces every value to be read (max() could use statistics)
        cols = ", ".join(TABLES[name].names)
        listing = ", ".join(f"'{f}'" for f in files)
        con.execute(f"SELECT count(*), sum(hash({cols})) FROM read_parquet([{listing}])")
        total += con.fetchone()[0]  # type: ignore[index]
    con.close()
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--engines", default="duckdb,postgres,spark")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (the target is 2)")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 3GB")
    ap.add_argument(
        "--database-url", default=os.environ.get("B12PLAN_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    ap.add_argument("--spark-master", default="local[*]")
    ap.add_argument("--spark-driver-memory", default="6g")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the cohort here")
    args = ap.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    from rich.console import Console
    from rich.table import Table

    from b12plan.knowledge import load_knowledge
    from b12plan.population.engines import (
        DuckDBEngine,
        PostgresEngine,
        SparkEngine,
        load_postgres,
        spark_session,
    )
    from b12plan.population.generate import DEFAULT_END, generate
    from b12plan.population.plan import MONITORING_CODES, build_plan

    console = Console(width=150)
    k = load_knowledge()
    as_of: date = DEFAULT_END
    work = args.workdir or Path(tempfile.mkdtemp(prefix="b12plan-bench-"))
    cohort = work / f"cohort-{args.patients}"
    rss = PeakRss()
    rows: list[Row] = []
    load = os.getloadavg()
    console.print(
        f"{args.patients:,} patients, as of {as_of}; {os.cpu_count()} CPUs, load average"
        f" {load[0]:.1f} at start; {platform.python_version()}; DuckDB threads {args.threads}"
    )

    if cohort.exists():
        shutil.rmtree(cohort)
    stats, secs, peak = timed(
        rss, lambda: generate(args.patients, cohort, k, seed=args.seed, chunk_size=100_000)
    )
    total_rows = sum(stats.rows.values())
    rows.append(
        Row(
            "generate (Parquet, zstd)",
            secs,
            peak,
            total_rows,
            f"{stats.bytes_on_disk / 1e6:,.0f} MB on disk",
        )
    )
    console.print(f"generated {total_rows:,} rows in {secs:.1f} s")

    scanned, secs, peak = timed(rss, lambda: floor_scan(cohort, args.threads))
    rows.append(Row("floor: one DuckDB scan of every column", secs, peak, scanned))

    reference = None
    if "duckdb" in engines or len(engines) > 1:
        engine = DuckDBEngine(cohort, threads=args.threads, memory_limit=args.memory_limit)
        plan = build_plan(k, as_of, "duckdb")
        reference, secs, peak = timed(rss, lambda: engine.run(plan))
        engine.close()
        rows.append(
            Row(
                "worklist: DuckDB",
                secs,
                peak,
                reference.num_rows,
                compare=True,
                note=f"all {len(plan.codes)} SQL-covered codes",
            )
        )
        console.print(f"DuckDB worklist {reference.num_rows:,} rows in {secs:.1f} s")
        engine = DuckDBEngine(cohort, threads=args.threads, memory_limit=args.memory_limit)
        subset = build_plan(k, as_of, "duckdb", MONITORING_CODES)
        part, secs, peak = timed(rss, lambda: engine.run(subset))
        engine.close()
        rows.append(
            Row(
                "worklist: DuckDB, monitoring subset",
                secs,
                peak,
                part.num_rows,
                compare=True,
                note=f"the {len(MONITORING_CODES)} monitoring codes",
            )
        )

    if "postgres" in engines:
        schema = f"b12plan_bench_{os.getpid()}"
        try:
            _, secs, peak = timed(rss, lambda: load_postgres(cohort, args.database_url, schema))
            rows.append(Row("PostgreSQL: load tables (COPY)", secs, peak, total_rows))
            pg = PostgresEngine(args.database_url, schema)
            plan = build_plan(k, as_of, "postgres")
            worklist, secs, peak = timed(rss, lambda: pg.run(plan))
            same = reference is not None and worklist.equals(reference)
            rows.append(
                Row(
                    "worklist: PostgreSQL",
                    secs,
                    peak,
                    worklist.num_rows,
                    "identical to DuckDB" if same else "DIFFERS from DuckDB",
                    compare=True,
                )
            )
            console.print(f"PostgreSQL worklist in {secs:.1f} s")
        finally:
            import psycopg

            from b12plan.population.engines import psycopg_url

            with psycopg.connect(psycopg_url(args.database_url), autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    if "spark" in engines:
        session, secs, peak = timed(
            rss,
            lambda: spark_session(args.spark_master, driver_memory=args.spark_driver_memory),
        )
        rows.append(
            Row(
                f"Spark: start session ({args.spark_master})",
                secs,
                None,
                None,
                "JVM; driver RSS not sampled",
            )
        )
        spark = SparkEngine(cohort, session)
        plan = build_plan(k, as_of, "spark")
        for attempt in ("first run", "second run"):
            worklist, secs, _ = timed(rss, lambda: spark.run(plan))
            same = reference is not None and worklist.equals(reference)
            rows.append(
                Row(
                    f"worklist: Spark ({attempt})",
                    secs,
                    None,
                    worklist.num_rows,
                    "identical to DuckDB" if same else "DIFFERS from DuckDB",
                    compare=True,
                )
            )
            console.print(f"Spark worklist ({attempt}) in {secs:.1f} s")
        spark.close()
        session.stop()

    duck = next((r.seconds for r in rows if r.phase == "worklist: DuckDB"), None)
    table = Table(title=f"population monitoring, {args.patients:,} patients")
    for name in ("phase", "seconds", "vs DuckDB", "peak RSS (Python process)", "rows", "note"):
        table.add_column(name, justify="left" if name in ("phase", "note") else "right")
    for r in rows:
        ratio = f"{r.seconds / duck:.1f}x" if r.compare and duck else ""
        table.add_row(
            r.phase,
            f"{r.seconds:.2f}",
            ratio,
            "" if r.rss is None else f"{r.rss / 2**20:,.0f} MB",
            "" if r.rows is None else f"{r.rows:,}",
            r.note,
        )
    console.print(table)
    load = os.getloadavg()
    console.print(
        f"load average at the end: {load[0]:.1f} (CPU shared with other work skews times)"
    )
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
