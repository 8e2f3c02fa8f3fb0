"""CLI start-up: wall time of whole ``b12plan`` processes, as a user or a script sees them.

Run: `.venv/bin/python benchmarks/cli_startup.py [--runs N] [--case FILE]`. Times
``b12plan --help`` and ``b12plan assess CASE --json`` (and the human rendering) over N runs each,
and prints p50/p90. Target: <= 0.5 s. Prints figures; asserts nothing.

Two settings are measured, because they differ by about half a second:
- "no bytecode cache": every module is compiled from source on every run (what happens when
  PYTHONDONTWRITEBYTECODE is set and no ``.pyc`` files were installed);
- "bytecode cached": ``.pyc`` files exist (a normal install, or any second run), kept here in a
  temporary PYTHONPYCACHEPREFIX so the source tree is not touched.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASE = ROOT / "src" / "b12plan" / "examples" / "01-pa-neuro-loading.json"
TARGET_S = 0.5


def command() -> list[str]:
    script = Path(sys.executable).parent / "b12plan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "b12plan"]


def time_runs(args: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each run.

    CPU time is shown too because wall time on a shared machine also measures the neighbours.
    """
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [*command(), *args], env=env, capture_output=True, check=False, timeout=120
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"b12plan {' '.join(args)} exited {done.returncode}: {done.stderr!r}")
    return walls, cpus


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE)
    options = parser.parse_args()

    commands = {
        "b12plan --help": ["--help"],
        "b12plan assess CASE --json": ["assess", str(options.case), "--json"],
        "b12plan assess CASE (Rich)": ["assess", str(options.case)],
    }
    with tempfile.TemporaryDirectory(prefix="b12plan-pycache-") as cache:
        uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        uncached["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(dir=cache)  # empty, never written
        cached = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        settings = {"no bytecode cache": uncached, "bytecode cached": cached}
        for args in commands.values():  # warm the cache (and the OS file cache)
            time_runs(args, cached, 1)

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"b12plan CLI start-up: {options.runs} runs each, {os.cpu_count()} CPUs,"
            f" load average {load}"
        )
        print(
            f"{'setting':<18} {'command':<27} {'p50 s':>6} {'p90 s':>6} {'min s':>6}"
            f" {'cpu p50':>8}  target {TARGET_S} s (wall p50)"
        )
        for setting, env in settings.items():
            for label, args in commands.items():
                walls, cpus = time_runs(args, env, options.runs)
                p50, p90 = statistics.median(walls), percentile(walls, 0.9)
                print(
                    f"{setting:<18} {label:<27} {p50:6.3f} {p90:6.3f} {min(walls):6.3f}"
                    f" {statistics.median(cpus):8.3f}  {'met' if p50 <= TARGET_S else 'missed'}"
                )


if __name__ == "__main__":
    main()
