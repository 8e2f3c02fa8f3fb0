"""Done-when of the reminders work, in a real browser: a patient chooses email reminders ten
days ahead, and the test's SMTP server receives the booking reminder on the right day of a
simulated clock.

The app runs as deployed (uvicorn, ``app_from_env``) with "today" pinned; the reminder runs
for each simulated day go to a real SMTP server (aiosmtpd) started by the test.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from b12plan.app import Settings, build_services
from b12plan.reminders.mail import SmtpSettings
from b12plan.reminders.settings import ReminderSettings
from b12plan.service import Principal
from b12plan.service.schemas import NewUser
from tests.reminders.cases import pernicious_anaemia_case
from tests.reminders.conftest import MovableClock
from tests.reminders.smtp import Mailbox, smtp_server
from tests.web.conftest import FAST_HASH, copy_db
from tests.web.test_browser import browser, new_context, new_page, served_app, shot

__all__ = ["browser"]  # the Chromium fixture, shared with the other browser tests

pytestmark = pytest.mark.browser

START = dt.date(2026, 3, 1)  # Ada's next 3-monthly dose is due on 2026-04-10
ADA = ("ada.patient", "ada-password-1")


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def ada_app(
    seeded_db: Path, tmp_path: Path, smtp: tuple[Mailbox, int]
) -> Iterator[tuple[str, str]]:
    """The app on a copy of the demo database with Ada (and her sign-in) added; (url, db url)."""
    db_url = f"sqlite:///{copy_db(seeded_db, tmp_path)}"
    services = build_services(
        Settings(database_url=db_url), clock=MovableClock(), password_hash=FAST_HASH
    )
    system = Principal.system("tests")
    document = pernicious_anaemia_case(START)
    document["patient"] = {"sex": "female", "birth_date": "1958-04-02"}
    pid = services.records.import_case(
        system, document, clinic_id="demo-clinic", display_name="Ada Lovelace", patient_id="ada"
    )
    services.auth.add_user(
        system,
        NewUser(username=ADA[0], password=ADA[1], role="patient", patient_id=pid),
    )
    services.db.dispose()
    env = {**os.environ, "B12PLAN_DATABASE_URL": db_url, "B12PLAN_TODAY": START.isoformat()}
    with served_app(env) as url:
        yield url, db_url


def test_patient_chooses_email_ten_days_ahead_and_the_booking_reminder_arrives_that_day(
    browser: Browser, ada_app: tuple[str, str], smtp: tuple[Mailbox, int]
) -> None:
    base_url, db_url = ada_app
    box, port = smtp
    context = new_context(browser)
    page = new_page(context)
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(ADA[0])
    page.get_by_label("Password").fill(ADA[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/me")
    page.get_by_role("link", name="Reminders").click()
    page.wait_for_url(f"{base_url}/me/settings")
    assert page.locator("[style]").count() == 0  # passes a strict CSP: no inline styles
    assert page.locator("script:not([src])").count() == 0  # ... and no inline scripts
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_label("Days ahead to remind you to book").fill("10")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url(f"{base_url}/me/settings?saved=1")
    assert page.locator("#settings-saved").is_visible()
    shot(page, "patient-reminder-settings", full_page=True)
    page.close()
    context.close()

    clock = MovableClock()
    runner = build_services(
        Settings(
            database_url=db_url,
            reminders=ReminderSettings(smtp=SmtpSettings(host="127.0.0.1", port=port)),
        ),
        clock=clock,
        password_hash=FAST_HASH,
    )
    try:
        arrived: dict[dt.date, list[str]] = {}
        for n in range(24, 33):  # 2026-03-25 .. 2026-04-02, one run each morning
            day = START + dt.timedelta(days=n)
            clock.set(day)
            before = len(box.to("ada@example.org"))
            runner.reminders.run()
            arrived[day] = [str(m["Subject"]) for m in box.to("ada@example.org")[before:]]
    finally:
        runner.db.dispose()
    booking = [day for day, subjects in arrived.items() if any("Book your" in s for s in subjects)]
    assert booking == [dt.date(2026, 3, 31)]  # ten days before 10 April
    assert arrived[dt.date(2026, 3, 31)] == [
        "Book your B12 injection appointment: due Friday 10 April 2026"
    ]
