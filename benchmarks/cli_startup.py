"""CLI start-up: wall time of whole ``b12plan`` processes, as a ratio to a bare ``python -c pass``.

Run: `.venv/bin/python benchmarks/cli_startup.py [--runs N] [--case FILE]`. Times ``b12plan
--help``, ``b12plan assess CASE --json`` and the human rendering over N runs each, and a bare
``python -c pass`` in the same setting and the same run, and prints p50/p90 and the ratio of
p50s. Ratios travel between machines and loads where seconds do not. Target: ``assess --json``
<= 8x a bare interpreter (issue 12). Prints figures; asserts nothing. A process that only
imports pydantic as ``assess`` must (``PYDANTIC_FLOOR``) shows what the one case validator
costs before b12plan does anything (ADR 0058).

Three settings, because bytecode decides most of the start-up time:
- "bytecode cached": ``.pyc`` files exist for everything (any second run on a normal machine),
  kept here in a temporary PYTHONPYCACHEPREFIX so the source tree is not touched;
- "no-write, as installed": PYTHONDONTWRITEBYTECODE is set, so nothing a run compiles is kept;
  only the ``.pyc`` files the install wrote are used (``make`` has uv compile site-packages and
  compileall our sources: ADR 0058). A machine that never writes bytecode sees this;
- "no .pyc anywhere": PYTHONDONTWRITEBYTECODE and an empty PYTHONPYCACHEPREFIX, so every
  module that is not frozen into the interpreter is compiled from source on every run (an
  install made without bytecode; the worst case, for comparison).
All three read the knowledge base the install compiled (``make knowledge``) when it matches.
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
BARE = "python -c pass (bare)"
PYDANTIC_FLOOR = "import pydantic (floor)"
PYDANTIC_IMPORTS = "from pydantic import BaseModel; import pydantic.plugin._loader"
"""What ``assess`` cannot avoid while the contract's pydantic models validate the case: pydantic
itself, and the plugin loader (with ``importlib.metadata``) its first validation imports."""


def command() -> list[str]:
    script = Path(sys.executable).parent / "b12plan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "b12plan"]


def time_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run.

    CPU time is shown too because wall time on a shared machine also measures the neighbours.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr!r}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def time_interleaved(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Each command once per round, ``runs`` rounds: the bare interpreter and the CLI see the
    same neighbours, so their ratio holds up better than either figure on a busy machine."""
    times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in commands}
    for _ in range(runs):
        for label, argv in commands.items():
            wall, cpu = time_once(argv, env)
            times[label][0].append(wall)
            times[label][1].append(cpu)
    return times


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
        BARE: [sys.executable, "-c", "pass"],
        PYDANTIC_FLOOR: [sys.executable, "-c", PYDANTIC_IMPORTS],
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
            time_once(argv, cached)

        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"b12plan CLI start-up: {options.runs} rounds, {os.cpu_count()} CPUs,"
            f" load average {load}; {installed_bytecode()}"
        )
        print(f"target: {TARGET_COMMAND} <= {TARGET_RATIO:g}x a bare interpreter (wall p50)")
        print(
            f"{'setting':<23} {'command':<27} {'p50 s':>6} {'p90 s':>6} {'min s':>6}"
            f" {'cpu p50':>8} {'x bare':>7} {'cpu x':>6}"
        )
        for setting, env in settings.items():
            times = time_interleaved(commands, env, options.runs)
            bare_wall, bare_cpu = (statistics.median(v) for v in times[BARE])
            for label, (walls, cpus) in times.items():
                p50, p90 = statistics.median(walls), percentile(walls, 0.9)
                cpu = statistics.median(cpus)
                ratio = p50 / bare_wall
                verdict = ""
                if label == TARGET_COMMAND and setting != "no .pyc anywhere":
                    verdict = "met" if ratio <= TARGET_RATIO else "missed"
                print(
                    f"{setting:<23} {label:<27} {p50:6.3f} {p90:6.3f} {min(walls):6.3f}"
                    f" {cpu:8.3f} {ratio:6.1f}x {cpu / bare_cpu:5.1f}x  {verdict}"
                )


if __name__ == "__main__":
    main()
