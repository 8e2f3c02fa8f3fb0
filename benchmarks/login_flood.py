"""Writes while a crowd sends wrong passwords: the sign-in throttle and the write lock (issue 13).

Before issue 13, sign-in verified the Argon2 hash while holding SQLite's write lock: 4 clients
sending bad passwords pushed a record write from ~25 ms to 9.4 s, and 6 made sign-ins fail with
503. This starts the real server (``b12plan serve``, one process) on a seeded store, measures a
clinician's record writes (POST a symptom report, one every 100 ms) unloaded, then for as long
again while ``--clients`` processes send wrong passwords to ``/api/v1/auth/token`` as fast as
they are answered (some for real accounts, some for unknown names, all from loopback: one
address).

Each phase writes to a new patient of its own: a record write validates the patient's whole
case, so writing every report to one patient makes each write slower than the one before, and
the later (flooded) phase would look slower with no flood at all. With a fresh patient and the
same length, write N of both phases meets the same case. ``--clients 0`` is the control: both
phases unloaded, so its ratio is the machine's own noise.

    .venv/bin/python benchmarks/login_flood.py                       # SQLite, 5 clients
    .venv/bin/python benchmarks/login_flood.py --clients 6 --backend postgresql
    .venv/bin/python benchmarks/login_flood.py --clients 0 --backend both   # the control

It prints the write latencies (median, p95, max) in both phases and their ratio, PASS or MISS
for the target (the median and p95 over the whole flood, from its first request, within 2x of
unloaded; "steady", after the flood's first seconds, is shown for comparison), what the flood
got (401 = a password was checked, 429 = refused before any password work, anything else is a
failure) and the load average (on a shared machine, compare runs only at similar loads).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api_latency import (
    DEFAULT_POSTGRES,
    postgres_store,
    seed,
    server,
    sqlite_store,
)

CLINICIAN = ("dr.demo", "demo-clinician")
TARGETS = ("dr.demo", "pat.demo", "admin.demo", "nobody.{n}")
SETTLE_SECONDS = 5.0  # the first tries are real Argon2 checks until the throttle engages


def sign_in(base: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": CLINICIAN[0], "password": CLINICIAN[1]},
        timeout=30,
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def new_patient(base: str, headers: dict[str, str], name: str) -> str:
    """A patient with no records (each phase writes to its own, see the module docstring)."""
    response = httpx.post(
        f"{base}/api/v1/patients",
        headers=headers,
        json={"display_name": name, "sex": "female", "birth_date": "1960-01-01"},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["id"])


def writes(
    base: str, headers: dict[str, str], seconds: float, patient: str = "demo-02"
) -> list[tuple[float, float]]:
    """Record writes, one every 100 ms, for ``seconds``: (start time, latency in ms) each."""
    latencies: list[tuple[float, float]] = []
    body = {"date": dt.date.today().isoformat(), "code": "fatigue", "status": "present"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            response = client.post(f"/api/v1/patients/{patient}/symptoms", json=body)
            latencies.append((started, (time.perf_counter() - started) * 1000))
            if response.status_code != 201:
                raise SystemExit(f"a write failed: {response.status_code} {response.text[:200]}")
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
    return latencies


def flood(base: str, stop: Event, results: Queue[dict[str, int]], n: int) -> None:
    """One attacking client (its own process, so it never competes with the writer's GIL)."""
    counts: collections.Counter[str] = collections.Counter()
    with httpx.Client(base_url=base, timeout=60) as client:
        i = 0
        while not stop.is_set():
            name = TARGETS[i % len(TARGETS)].format(n=f"{n}-{i}")
            try:
                status = client.post(
                    "/api/v1/auth/token", data={"username": name, "password": f"wrong-{i}"}
                ).status_code
                counts[str(status)] += 1
            except httpx.TransportError as exc:
                counts[type(exc).__name__] += 1
            i += 1
    results.put(dict(counts))


def summary(timed: list[tuple[float, float]]) -> tuple[float, float, float]:
    ordered = sorted(ms for _, ms in timed)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95, ordered[-1]


def run(url: str, label: str, clients: int, seconds: float) -> None:
    seed(url)
    with server(url) as (base, _pid):
        headers = sign_in(base)
        writes(base, headers, 2)  # warm-up
        quiet = writes(base, headers, seconds, new_patient(base, headers, "Unloaded Writes"))
        flooded_patient = new_patient(base, headers, "Flooded Writes")
        stop: Event = multiprocessing.Event()
        results: Queue[dict[str, int]] = multiprocessing.Queue()
        attackers = [
            multiprocessing.Process(target=flood, args=(base, stop, results, n))
            for n in range(clients)
        ]
        started = time.monotonic()
        for attacker in attackers:
            attacker.start()
        flood_started = time.perf_counter()
        loaded = writes(base, headers, seconds, flooded_patient)
        stop.set()
        counts: collections.Counter[str] = collections.Counter()
        for _ in attackers:
            counts.update(results.get(timeout=60))
        for attacker in attackers:
            attacker.join()
        flood_seconds = time.monotonic() - started
    steady = [(t, ms) for t, ms in loaded if t - flood_started >= SETTLE_SECONDS]
    q, lo, st = summary(quiet), summary(loaded), summary(steady)
    print(f"\n{label}: {clients} clients sending wrong passwords for {flood_seconds:.0f} s")
    print(f"  {'':10} {'writes':>7} {'median':>9} {'p95':>9} {'max':>9}")
    print(f"  {'unloaded':10} {len(quiet):7} {q[0]:8.1f}ms {q[1]:8.1f}ms {q[2]:8.1f}ms")
    print(f"  {'flooded':10} {len(loaded):7} {lo[0]:8.1f}ms {lo[1]:8.1f}ms {lo[2]:8.1f}ms")
    print(f"  ratio      {'':7} {lo[0] / q[0]:8.2f}x  {lo[1] / q[1]:8.2f}x")
    print(f"  {'steady':10} {len(steady):7} {st[0]:8.1f}ms {st[1]:8.1f}ms {st[2]:8.1f}ms")
    print(f"  ratio      {'':7} {st[0] / q[0]:8.2f}x  {st[1] / q[1]:8.2f}x")
    total = sum(counts.values())
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    print(f"  sign-in attempts: {total} ({total / flood_seconds:.0f}/s) -> {shown}")
    for name, got in (("whole flood", lo), (f"after its first {SETTLE_SECONDS:.0f} s", st)):
        verdict = "within" if got[0] <= 2 * q[0] and got[1] <= 2 * q[1] else "NOT within"
        print(f"  {name}: writes {verdict} 2x of unloaded (median and p95)")
    target = lo[0] <= 2 * q[0] and lo[1] <= 2 * q[1]
    print(f"  {'PASS' if target else 'MISS'}: whole-flood write median and p95 within 2x")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  load average after the run (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with sqlite_store() as url:
            run(url, "SQLite", args.clients, args.seconds)
    if args.backend in ("postgresql", "both"):
        with postgres_store(args.postgres_url) as url:
            run(url, "PostgreSQL", args.clients, args.seconds)


if __name__ == "__main__":
    main()
