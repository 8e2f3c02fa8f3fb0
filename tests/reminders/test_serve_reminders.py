"""``b12plan serve --reminders`` sends reminders from a background thread while serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.reminders.smtp import free_port, smtp_server
from tests.reminders.test_runner_killed import seed
from tests.store.support import sqlite_database


def test_server_with_reminders_sends_the_booking_email_once(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as url, smtp_server() as (box, smtp_port):
        ids = seed(url)
        port = free_port()
        env = {
            **os.environ,
            "B12PLAN_DATABASE_URL": url,
            "B12PLAN_TODAY": "2026-03-31",
            "B12PLAN_SMTP_HOST": "127.0.0.1",
            "B12PLAN_SMTP_PORT": str(smtp_port),
            "B12PLAN_REMINDER_INTERVAL_SECONDS": "1",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from b12plan.cli import main; main()",
                "serve",
                "--reminders",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 90
            while len(box.received()) < 2 * len(ids) and time.monotonic() < deadline:
                assert server.poll() is None, "the server exited"
                time.sleep(0.2)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
                assert page.status == 200  # serving while the reminder thread works
            time.sleep(2.5)  # two more passes of the loop: nothing is sent again
        finally:
            server.terminate()
            server.wait(timeout=20)
        bookings = [m for m in box.received() if "Book your" in str(m["Subject"])]
        assert sorted(str(m["To"]) for m in bookings) == sorted(f"{p}@patients.test" for p in ids)
        ids_seen = [m["Message-ID"] for m in box.received()]
        assert len(ids_seen) == len(set(ids_seen))
