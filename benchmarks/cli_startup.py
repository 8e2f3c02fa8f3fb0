"""CLI start-up: wall time of whole ``b12plan`` processes, as a ratio to a bare ``python -c pass``.

Run: `.venv/bin/python benchmarks/cli_startup.py [--runs N] [--case FILE]`. Times ``b12plan
--help``, ``b12plan assess CASE --json`` and the human rendering over N runs each, and a bare
``python -c pass`` in the same setting and the same run, and prints p50/p90 and the ratio of
p50s. Ratios travel between machines and loads where seconds do not. Target: ``assess --json``
<= 8x a bare interpreter (issue 12). Prints figures; asserts nothing.

Three settings, because bytecode decides most of the start-up time:
- "bytecode cached": ``.pyc`` files exist for everything (any second run on a normal machine),
  kept here in a temporary PYTHONPYCACHEPREFIX so the source tree is not touched;
- "no-write, as installed": PYTHONDONTWRITEBYTECODE is set, so nothing a run compiles is kept;
  only the ``.pyc`` files the install wrote are used (``make`` has uv compile site-packages and
  compileall our sources: ADR 0058). A machine that never writes bytecode sees this;
- "no .pyc anywhere": PYTHONDONTWRITEBYTECODE and an empty PYTHONPYCACHEPREFIX, so every
  module that is not frozen into the interpreter is compiled from source on every run (an
  install made without bytecode; the worst case, for comparison).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASE = ROOT / "src" / "b12plan" / "examples" / "01-pa-neuro-loading.json"
TARGET_RATIO = 8.0
TARGET_COMMAND = "b12plan assess CASE --json"


def command() -> list[str]:
    script = Path(sys.executable).parent / "b12plan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "b12plan"]


def time_runs(argv: list[str], env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each run.

    CPU time is shown too because wall time on a shared machine also measures the neighbours.
    """
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr!r}")
    return walls, cpus


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def installed_bytecode() -> str:
    """How many ``.pyc`` files the install holds (site-packages, and our sources)."""
    site = Path(sysconfig.get_paths()["purelib"])
    ours = ROOT / "src" / "b12plan"
    in_site = sum(1 for _ in site.rglob("*.pyc"))
    in_ours = sum(1 for _ in ours.rglob("*.pyc"))
    return f"{in_site} .pyc in site-packages, {in_ours} in src/b12plan"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE)
    options = parser.parse_args()

    commands = {
        "python -c pass (bare)": [sys.executable, "-c", "pass"],
        "b12plan --help": [*command(), "--help"],
        TARGET_COMMAND: [*command(), "assess", str(options.case), "--json"],
        "b12plan assess CASE (Rich)": [*command(), "assess", str(options.case)],
    }
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX",)}
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="b12plan-pycache-") as cache:
        cached = {**base, "PYTHONPYCACHEPREFIX": cache}
        as_installed = {**base, "PYTHONDONTWRITEBYTECODE": "1"}
        nowhere = {**as_installed, "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(dir=cache)}
        settings = {
            "bytecode cached": cached,
            "no-write, as installed": as_installed,
            "no .pyc anywhere": nowhere,
        }
        for argv in commands.values():  # warm the cache (and the OS file cache)
            time_runs(argv, cached, 1)

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"b12plan CLI start-up: {options.runs} runs each, {os.cpu_count()} CPUs,"
            f" load average {load}; {installed_bytecode()}"
        )
        print(
            f"{'setting':<23} {'command':<27} {'p50 s':>6} {'p90 s':>6} {'min s':>6}"
            f" {'cpu p50':>8} {'x bare':>7}  target: {TARGET_COMMAND} <= {TARGET_RATIO:g}x bare"
        )
        for setting, env in settings.items():
            bare = None
            for label, argv in commands.items():
                walls, cpus = time_runs(argv, env, options.runs)
                p50, p90 = statistics.median(walls), percentile(walls, 0.9)
                bare = bare or p50
                ratio = p50 / bare
                verdict = ""
                if label == TARGET_COMMAND and setting != "no .pyc anywhere":
                    verdict = "met" if ratio <= TARGET_RATIO else "missed"
                print(
                    f"{setting:<23} {label:<27} {p50:6.3f} {p90:6.3f} {min(walls):6.3f}"
                    f" {statistics.median(cpus):8.3f} {ratio:6.1f}x  {verdict}"
                )


if __name__ == "__main__":
    main()
