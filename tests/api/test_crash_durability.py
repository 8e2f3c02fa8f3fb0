"""Nothing acknowledged is lost: a write that got a 2xx survives the server being killed.

The real server (``b12plan serve``, uvicorn, SQLite file) takes a burst of concurrent writes and
is killed with SIGKILL in the middle of it; after a restart, every write that was answered 2xx
is there, with its audit entry, and the database file is intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from b12plan.service import Principal
from b12plan.service.schemas import NewClinic, NewPatient, NewUser
from b12plan.store import upgrade
from tests.store.support import make_services

PASSWORD = "crash-test-password"
WRITES = 240
CONCURRENCY = 8
KILL_AFTER = 60  # acknowledged writes before the kill


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def server(url: str, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``b12plan serve`` on a free loopback port; yields the process and its base URL."""
    port = free_port()
    with log.open("ab") as err:
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
                "--no-access-log",
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "B12PLAN_TODAY": ""},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited early: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield process, base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def token(base: str, username: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def burst(
    base: str, headers: dict[str, str], patient: str, process: subprocess.Popen[bytes]
) -> dict[str, str]:
    """Fire the writes; SIGKILL the server once ``KILL_AFTER`` are acknowledged.

    Returns note -> record id for every write answered 2xx.
    """
    acknowledged: dict[str, str] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(WRITES):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            note = f"burst-{i}"
            body = {"code": "fatigue", "date": "2025-01-06", "status": "present", "note": note}
            try:
                response = await client.post(
                    f"{base}/api/v1/patients/{patient}/symptoms", json=body, headers=headers
                )
            except httpx.TransportError:
                continue
            if 200 <= response.status_code < 300:
                acknowledged[note] = response.json()["id"]
                if len(acknowledged) == KILL_AFTER:
                    os.kill(process.pid, signal.SIGKILL)

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return acknowledged


@pytest.mark.slow
def test_every_acknowledged_write_survives_a_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    upgrade(url)
    services = make_services(url)
    system = Principal.system("tests")
    services.auth.add_clinic(system, NewClinic(id="crash", name="Crash clinic"))
    services.auth.add_user(
        system,
        NewUser(username="crash.clinician", password=PASSWORD, role="clinician", clinic_id="crash"),
    )
    patient = services.records.create_patient(
        system, NewPatient(display_name="Crash Test", clinic_id="crash")
    ).id
    services.db.dispose()
    log = tmp_path / "server.log"

    with server(url, log) as (process, base):
        assert process.stdout is not None
        assert process.stdout.readline().decode().startswith(f"b12plan API on {base}")
        acknowledged = asyncio.run(burst(base, token(base, "crash.clinician"), patient, process))
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
    assert len(acknowledged) >= KILL_AFTER
    assert len(acknowledged) < WRITES, "the kill came after the burst: nothing was interrupted"

    with server(url, log) as (_, base):
        headers = token(base, "crash.clinician")
        stored = httpx.get(
            f"{base}/api/v1/patients/{patient}/symptoms", headers=headers, timeout=30
        ).json()
        audit = httpx.get(
            f"{base}/api/v1/patients/{patient}/audit",
            headers=headers,
            params={"limit": 500},
            timeout=30,
        ).json()["items"]
    by_note = {r["data"]["note"]: r["id"] for r in stored}
    missing = {n: i for n, i in acknowledged.items() if by_note.get(n) != i}
    assert missing == {}
    audited = {a["entity_id"] for a in audit if a["action"] == "create"}
    assert set(acknowledged.values()) <= audited
    assert set(by_note.values()) <= audited  # nothing stored without its audit entry

    with contextlib.closing(sqlite3.connect(tmp_path / "crash.db")) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
