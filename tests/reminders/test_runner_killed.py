"""``b12plan reminders run`` killed (SIGKILL) in the middle of a batch: the rerun sends each
reminder exactly once, counted at a real SMTP server.

The runner is a real subprocess. The SMTP server kills it while it is in the middle of its third
message (after DATA, before the server has accepted it), which is where a crash can land in a
batch. The row it was sending stays claimed until its lease lapses; the next run sends it. The
one place exactly-once cannot be promised, a crash after the server accepted a message and before
"sent" is committed, is shown in ``test_delivery`` (a duplicate with the same Message-ID).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest

from b12plan.app import Settings, build_services
from b12plan.reminders.mail import SmtpSettings
from b12plan.reminders.settings import ReminderSettings
from b12plan.service import Principal
from b12plan.service.schemas import NewClinic
from b12plan.store.models import OutboxRow
from tests.reminders.cases import pernicious_anaemia_case
from tests.reminders.smtp import smtp_server
from tests.store.support import FAST_HASH, make_services, postgres_database, sqlite_database

PATIENTS = 6
KILL_AT = 3  # the message during which the runner is killed
LEASE_SECONDS = 2
RUN_DAY = "2026-03-31"  # ten days before the 3-monthly doses due on 2026-04-10


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        with sqlite_database(tmp_path) as url:
            yield url
    else:
        with postgres_database() as url:
            yield url


def seed(url: str) -> list[str]:
    services = make_services(url)
    system = Principal.system("tests")
    services.auth.add_clinic(system, NewClinic(id="elm", name="Elm Surgery"))
    ids = []
    for n in range(PATIENTS):
        document = pernicious_anaemia_case(dt.date(2026, 3, 1))
        document["patient"] = {"sex": "female", "birth_date": "1958-04-02"}
        pid = services.records.import_case(
            system, document, clinic_id="elm", display_name=f"Patient {n}", patient_id=f"p{n}"
        )
        services.reminders.set_preferences(
            system, pid, {"channel": "email", "email": f"{pid}@patients.test", "lead_days": 10}
        )
        ids.append(pid)
    services.db.dispose()
    return ids


def runner(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "B12PLAN_SMTP_HOST": "127.0.0.1",
        "B12PLAN_SMTP_PORT": str(port),
        "B12PLAN_REMINDER_LEASE_SECONDS": str(LEASE_SECONDS),
        "B12PLAN_DATABASE_URL": url,
    }
    env.pop("B12PLAN_TODAY", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from b12plan.cli import main; main()",
            "reminders",
            "run",
            "--as-of",
            RUN_DAY,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_killed_runner_then_rerun_sends_each_reminder_exactly_once(
    kind: str, tmp_path: Path
) -> None:
    with database(kind, tmp_path) as url, smtp_server() as (box, port):
        ids = seed(url)
        seen = 0
        victim: list[subprocess.Popen[bytes]] = []
        killed_at: list[float] = []

        def kill_mid_batch(message: EmailMessage) -> str | None:
            nonlocal seen
            seen += 1
            if seen == KILL_AT:
                os.kill(victim[0].pid, signal.SIGKILL)
                killed_at.append(time.monotonic())
                return "421 4.3.0 connection lost"  # the client is gone: nothing accepted
            return None

        box.before_accept = kill_mid_batch
        victim.append(runner(url, port))
        assert victim[0].wait(timeout=120) == -signal.SIGKILL
        delivered_before_kill = len(box.received())
        assert delivered_before_kill == KILL_AT - 1
        box.before_accept = None

        services = make_services(url)
        try:
            held = [r for r in services.reminders.outbox.rows() if r.state == "sending"]
            assert len(held) == 1  # the row that was on the wire when the runner died

            # the dead runner's lease must lapse before its row may be taken over
            time.sleep(max(0.0, killed_at[0] + LEASE_SECONDS + 0.5 - time.monotonic()))
            rerun = runner(url, port)
            _, err = rerun.communicate(timeout=120)
            assert rerun.returncode == 0, err.decode()
            # and once more (in this process, on the real clock): nothing new
            again = build_services(
                Settings(
                    database_url=url,
                    reminders=ReminderSettings(smtp=SmtpSettings(host="127.0.0.1", port=port)),
                ),
                password_hash=FAST_HASH,
            )
            try:
                report = again.reminders.run(dt.date.fromisoformat(RUN_DAY))
            finally:
                again.db.dispose()
            assert (report.enqueued, report.sent) == (0, 0)

            messages = box.received()
            bookings = [m for m in messages if "Book your B12 injection" in str(m["Subject"])]
            per_patient = sorted(str(m["To"]) for m in bookings)
            assert per_patient == sorted(f"{pid}@patients.test" for pid in ids)
            ids_seen = [m["Message-ID"] for m in messages]
            assert len(ids_seen) == len(set(ids_seen))  # no message twice
            rows: list[OutboxRow] = [
                r for r in services.reminders.outbox.rows(ids) if r.send_on.isoformat() <= RUN_DAY
            ]
            assert {r.state for r in rows} == {"sent"}
            assert sorted(ids_seen) == sorted(r.message_id for r in rows)
        finally:
            services.db.dispose()
