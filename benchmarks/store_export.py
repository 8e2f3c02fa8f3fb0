"""Records store → population tables (`b12plan population from-store`): patients per second.

Builds a store of N patients (the clinical scenarios, cycled, dates moved onto one day) on SQLite,
or on PostgreSQL with --database-url, then times the export and the DuckDB worklist over it.
Prints figures; asserts nothing.

    .venv/bin/python benchmarks/store_export.py                      # 2,000 patients, SQLite
    .venv/bin/python benchmarks/store_export.py --patients 1000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/scratch

With --database-url, use a scratch database: the patients stay (the store never deletes records).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.date(2027, 6, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument(
        "--database-url", default=None, help="an upgraded store (default: a new SQLite file)"
    )
    args = ap.parse_args()

    from b12plan.app import Settings, build_services
    from b12plan.population.engines import DuckDBEngine
    from b12plan.population.plan import build_plan
    from b12plan.service import Principal
    from b12plan.service.clock import PinnedDayClock
    from b12plan.service.cohort import export_cohort
    from b12plan.service.demo import shift_dates
    from b12plan.service.schemas import NewClinic
    from b12plan.store import upgrade

    work = Path(tempfile.mkdtemp(prefix="b12plan-export-"))
    url = args.database_url or f"sqlite:///{work / 'store.db'}"
    upgrade(url)
    services = build_services(
        Settings(database_url=url), clock=PinnedDayClock(DAY + dt.timedelta(days=200))
    )
    system = Principal.system("benchmark")
    clinic = f"bench-{os.getpid()}"
    services.auth.add_clinic(system, NewClinic(id=clinic, name="Benchmark clinic"))
    scenarios = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "tests" / "scenarios").glob("*.json"))
    ]
    started = time.perf_counter()
    for i in range(args.patients):
        document = scenarios[i % len(scenarios)]["case"]
        days = (DAY - dt.date.fromisoformat(document["as_of"])).days
        services.records.import_case(
            system, shift_dates(document, days), clinic_id=clinic, patient_id=f"{clinic}-{i:07d}"
        )
    stored = time.perf_counter() - started

    out = work / "cohort"
    started = time.perf_counter()
    result = export_cohort(services.db, services.knowledge, out, as_of=DAY, clinic_id=clinic)
    exported = time.perf_counter() - started

    engine = DuckDBEngine(out)
    started = time.perf_counter()
    worklist = engine.run(build_plan(services.knowledge, DAY, "duckdb"))
    screened = time.perf_counter() - started
    engine.close()
    services.db.dispose()

    backend = url.split(":", 1)[0]
    print(f"store export, {backend}, {result.patients:,} patients, load {os.getloadavg()[0]:.1f}")
    print(f"  store the patients (import_case)   {stored:7.2f} s  (setup, not the measure)")
    print(
        f"  export to the population tables    {exported:7.2f} s  ="
        f" {result.patients / exported:,.0f} patients/s, {sum(result.rows.values()):,} rows"
    )
    print(f"  DuckDB worklist over them          {screened:7.2f} s  ({worklist.num_rows:,} rows)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
