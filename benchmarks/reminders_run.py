"""`b12plan reminders run` over a clinic: how long planning, queueing and sending take.

Builds a SQLite store of N patients on 3-monthly maintenance (clinic-given, email reminders 10
days ahead, due dates spread over the quarter), starts a local SMTP server (aiosmtpd), and times
runs on simulated days: the first (queues every patient's rows), a day that sends, and a second
run the same day (nothing new: the idempotent case cron repeats). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/reminders_run.py --patients 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=300)
    args = ap.parse_args()

    from tests.reminders.cases import pernicious_anaemia_case
    from tests.reminders.conftest import MovableClock
    from tests.reminders.smtp import smtp_server
    from tests.store.support import FAST_HASH

    from b12plan.app import Settings, build_services
    from b12plan.reminders.mail import SmtpSettings
    from b12plan.reminders.settings import ReminderSettings
    from b12plan.service import Principal
    from b12plan.service.schemas import NewClinic
    from b12plan.store import upgrade

    with tempfile.TemporaryDirectory() as tmp, smtp_server() as (box, port):
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        clock = MovableClock()
        services = build_services(
            Settings(
                database_url=url,
                reminders=ReminderSettings(smtp=SmtpSettings(host="127.0.0.1", port=port)),
            ),
            clock=clock,
            password_hash=FAST_HASH,
        )
        system = Principal.system("bench")
        services.auth.add_clinic(system, NewClinic(id="elm", name="Elm Surgery"))
        start = time.perf_counter()
        for n in range(args.patients):
            shift = dt.timedelta(days=n % 84)
            as_of = dt.date(2026, 3, 1)
            document = pernicious_anaemia_case(as_of)
            for dose in document["administrations"]:
                dose["date"] = (dt.date.fromisoformat(dose["date"]) - shift).isoformat()
            document["patient"] = {"sex": "female", "birth_date": "1958-04-02"}
            pid = services.records.import_case(system, document, clinic_id="elm")
            services.reminders.set_preferences(
                system, pid, {"channel": "email", "email": f"p{n}@bench.test", "lead_days": 10}
            )
        print(f"store of {args.patients} patients built in {time.perf_counter() - start:.1f} s")
        for label, day in (
            ("first run (queues every patient)", dt.date(2026, 3, 1)),
            ("next day", dt.date(2026, 3, 2)),
            ("same day again (idempotent)", dt.date(2026, 3, 2)),
        ):
            clock.set(day)
            before = len(box.received())
            t0 = time.perf_counter()
            report = services.reminders.run()
            took = time.perf_counter() - t0
            sent = len(box.received()) - before
            print(
                f"{label:<36} {took:6.2f} s  queued {report.enqueued:5}  sent {sent:4}"
                f"  ({args.patients / took:,.0f} patients/s)"
            )
        services.db.dispose()


if __name__ == "__main__":
    main()
