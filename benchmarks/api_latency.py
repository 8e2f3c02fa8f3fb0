"""API latency under a steady open-loop load: GET assessment and CDS Hooks patient-view.

For each backend (SQLite file, PostgreSQL database) this seeds the demo data into a fresh store,
starts the real server (``b12plan serve``, uvicorn, one process) on a loopback port, signs in as
the demo clinician and sends requests at a fixed rate (default 100/s for 60 s per endpoint).
Requests are sent on schedule whether or not earlier ones have finished (open loop), and each
latency is measured from the moment the request was due, so a slow server cannot hide its
queueing delay. The count is bounded: rate x seconds requests per endpoint.

    .venv/bin/python benchmarks/api_latency.py                 # both backends, 60 s each
    .venv/bin/python benchmarks/api_latency.py --seconds 10 --backend sqlite

Target: p99 <= 50 ms. The load generator runs on the same machine as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLINICIAN = ("dr.demo", "demo-clinician")
SERIAL_REQUESTS = 220
PATIENTS = ("demo-01", "demo-02", "demo-03", "demo-04", "demo-06")  # the demo clinic's


@dataclass
class Result:
    backend: str
    endpoint: str
    sent: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def row(self) -> str:
        return (
            f"| {self.backend} | {self.endpoint} | {self.sent} | {self.errors} | "
            f"{self.sent / self.seconds:.1f} | {self.percentile(50):.1f} | "
            f"{self.percentile(90):.1f} | {self.percentile(99):.1f} | "
            f"{max(self.latencies_ms, default=float('nan')):.1f} | "
            f"{statistics.fmean(self.latencies_ms) if self.latencies_ms else float('nan'):.1f} |"
        )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def sqlite_store() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="b12plan-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'bench.db'}"


@contextlib.contextmanager
def postgres_store(base: str) -> Iterator[str]:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"b12plan_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str) -> None:
    """Migrate and seed the demo data (as of the real today: the server uses the real clock)."""
    from b12plan.app import Settings, build_services
    from b12plan.service.demo import seed_demo
    from b12plan.store import upgrade

    upgrade(url)
    services = build_services(Settings(database_url=url))
    seed_demo(services.records, services.auth, today=services.clock.today())
    services.db.dispose()


@contextlib.contextmanager
def server(url: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from b12plan.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--database-url",
            url,
            "--no-migrate",
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "B12PLAN_TODAY"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit("the server exited during start-up")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit("the server did not start")
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def request_for(endpoint: str, i: int) -> tuple[str, str, dict[str, object] | None]:
    patient = PATIENTS[i % len(PATIENTS)]
    if endpoint == "assessment":
        return "GET", f"/api/v1/patients/{patient}/assessment", None
    body: dict[str, object] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=i)),
        "context": {"userId": "Practitioner/demo", "patientId": patient},
    }
    return "POST", "/cds-services/b12plan-patient-view", body


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: the generator must cost far less
    than the server it measures (an httpx client costs milliseconds per request)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict[str, object] | None) -> int:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.fixed}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        self.writer.write(head.encode() + payload)
        status_line = await self.reader.readline()
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while (size := int((await self.reader.readline()).split(b";")[0], 16)) > 0:
                await self.reader.readexactly(size + 2)
            await self.reader.readline()
        else:
            await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()


async def open_loop(
    base: str,
    headers: dict[str, str],
    endpoint: str,
    rate: float,
    seconds: float,
    connections: int = 32,
) -> tuple[int, int, list[float]]:
    """Requests due every 1/rate s, taken by the next free connection; latency from due time."""
    count = int(rate * seconds)
    host, port = base.removeprefix("http://").split(":")
    pool = [Connection(host, int(port), headers) for _ in range(connections)]
    for i, connection in enumerate(pool):  # warm up: open the connections, fill caches
        method, path, body = request_for(endpoint, i)
        await connection.request(method, path, body)
    loop = asyncio.get_running_loop()
    due_queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while (item := await due_queue.get()) is not None:
            i, due = item
            method, path, body = request_for(endpoint, i)
            try:
                status = await connection.request(method, path, body)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
                await connection.close()
                connection.writer = connection.reader = None
            if status == 200:
                latencies.append((loop.time() - due) * 1000)
            else:
                errors += 1

    workers = [asyncio.create_task(worker(c)) for c in pool]
    start = loop.time() + 0.05
    for i in range(count):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        due_queue.put_nowait((i, due))
    for _ in pool:
        due_queue.put_nowait(None)
    await asyncio.gather(*workers)
    for connection in pool:
        await connection.close()
    return count, errors, latencies


def run_backend(
    backend: str, url: str, endpoints: list[str], rate: float, seconds: float, workers: int
) -> list[Result]:
    seed(url)
    results = []
    with server(url, workers) as (base, pid):
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"username": CLINICIAN[0], "password": CLINICIAN[1]},
            timeout=30,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for endpoint in endpoints:
            started = time.monotonic()
            serial = asyncio.run(one_at_a_time(base, headers, endpoint, SERIAL_REQUESTS))
            took = time.monotonic() - started
            label = f"{endpoint} (one at a time)"
            print(Result(backend, label, len(serial), 0, took, serial).row(), flush=True)
            load, cpu = os.getloadavg()[0], cpu_seconds(pid)
            sent, errors, latencies = asyncio.run(open_loop(base, headers, endpoint, rate, seconds))
            result = Result(backend, endpoint, sent, errors, seconds, latencies)
            used = cpu_seconds(pid) - cpu
            per_request = (
                f"; server CPU {used / sent * 1000:.1f} ms/request" if workers == 1 else ""
            )
            print(
                f"{result.row()} load {load:.1f}→{os.getloadavg()[0]:.1f}{per_request}", flush=True
            )
            results.append(result)
    return results


async def one_at_a_time(
    base: str, headers: dict[str, str], endpoint: str, count: int
) -> list[float]:
    """Service time without queueing: one connection, the next request after the last reply."""
    host, port = base.removeprefix("http://").split(":")
    connection = Connection(host, int(port), headers)
    loop = asyncio.get_running_loop()
    latencies = []
    for i in range(count):
        method, path, body = request_for(endpoint, i)
        sent = loop.time()
        await connection.request(method, path, body)
        latencies.append((loop.time() - sent) * 1000)
    await connection.close()
    return latencies[20:]  # after warming up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per endpoint (default 60)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--endpoint", choices=["assessment", "cds", "both"], default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("B12PLAN_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="server to create the benchmark database on",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.rate <= 0:
        parser.error("--seconds and --rate must be positive")
    endpoints = ["assessment", "cds"] if args.endpoint == "both" else [args.endpoint]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {args.rate:g} req/s for "
        f"{args.seconds:g} s per endpoint; latency from the scheduled send time (ms)"
    )
    print(f"# load average before: {os.getloadavg()[0]:.1f} (other processes on this machine)")
    print("| backend | endpoint | requests | errors | req/s | p50 | p90 | p99 | max | mean |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results: list[Result] = []
    for backend in backends:
        store = sqlite_store() if backend == "sqlite" else postgres_store(args.postgres_url)
        with store as url:
            results += run_backend(backend, url, endpoints, args.rate, args.seconds, args.workers)
    worst = max(r.percentile(99) for r in results)  # the open-loop runs
    print(f"# worst p99: {worst:.1f} ms (target <= 50 ms): {'met' if worst <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
