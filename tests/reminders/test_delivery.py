"""Reminders from the store to a real SMTP server, on a simulated clock (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from b12plan.reminders.service import ReminderService, RunReport
from b12plan.service import InvalidInput, Principal
from b12plan.service.schemas import AdministrationIn
from b12plan.store.models import AuditEntry, OutboxRow
from tests.reminders.cases import pernicious_anaemia_case
from tests.reminders.conftest import Clinic

SYSTEM = Principal.system("tests")
DUE = dt.date(2026, 4, 10)  # the 3-monthly dose after January's loading course


def ada(clinic: Clinic, **prefs: object) -> str:
    """Ada: pernicious anaemia, loaded in January, clinic-given doses, email reminders."""
    services = clinic.services
    document = pernicious_anaemia_case(dt.date(2026, 3, 1))
    document["patient"] = {"sex": "female", "birth_date": "1958-04-02"}
    pid = services.records.import_case(
        SYSTEM, document, clinic_id=clinic.clinic_id, display_name="Ada Lovelace"
    )
    settings = {"channel": "email", "email": f"{pid}@patients.test", **prefs}
    services.reminders.set_preferences(SYSTEM, pid, settings)
    return pid


def run_days(service: ReminderService, clinic: Clinic, days: list[dt.date], pid: str) -> None:
    for day in days:
        clinic.clock.set(day)
        service.run(patient_ids=[pid])


def subjects(clinic: Clinic, pid: str) -> list[str]:
    return [str(m["Subject"]) for m in clinic.mailbox.to(f"{pid}@patients.test")]


def test_booking_reminder_arrives_ten_days_before_due_and_only_once(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10)
    service = clinic.services.reminders
    days = [dt.date(2026, 3, 20) + dt.timedelta(days=n) for n in range(12)]
    arrivals: dict[dt.date, list[str]] = {}
    for day in days:
        before = len(subjects(clinic, pid))
        run_days(service, clinic, [day], pid)
        arrivals[day] = subjects(clinic, pid)[before:]
    booking_days = [
        d for d, s in arrivals.items() if any("Book your B12 injection" in x for x in s)
    ]
    assert booking_days == [DUE - dt.timedelta(days=10)]
    message = next(
        m for m in clinic.mailbox.to(f"{pid}@patients.test") if "Book" in str(m["Subject"])
    )
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert "Friday 10 April 2026" in plain.get_content()
    assert "Elm Surgery" in html.get_content() and "<script" not in html.get_content()
    # the same day again: nothing new
    count = len(clinic.mailbox.received())
    service.run(patient_ids=[pid])
    assert len(clinic.mailbox.received()) == count


def test_dates_are_written_in_the_patients_language(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10, language="de", time_zone="Europe/Berlin")
    run_days(clinic.services.reminders, clinic, [dt.date(2026, 3, 31)], pid)
    booking = [s for s in subjects(clinic, pid) if "Book" in s]
    assert booking == ["Book your B12 injection appointment: due Freitag, 10. April 2026"]


def test_recorded_dose_cancels_the_overdue_reminder_with_an_audit_entry(clinic: Clinic) -> None:
    pid = ada(clinic)
    service = clinic.services.reminders
    run_days(service, clinic, [dt.date(2026, 4, 1)], pid)
    with clinic.services.db.reading() as session:
        overdue = session.scalars(
            select(OutboxRow).where(
                OutboxRow.patient_id == pid, OutboxRow.kind == "injection_overdue"
            )
        ).one()
        assert overdue.state == "pending"
    clinic.clock.set(dt.date(2026, 4, 8))
    clinic.services.records.add_record(
        SYSTEM,
        pid,
        AdministrationIn(
            date=dt.date(2026, 4, 8),
            product="hydroxocobalamin",
            dose=1,
            unit="mg",
            route="IM",
            given_by="clinic",
        ),
    )
    report = service.run(patient_ids=[pid])
    assert report.cancelled >= 1
    with clinic.services.db.reading() as session:
        row = session.get(OutboxRow, overdue.id)
        assert row is not None and row.state == "cancelled"
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == overdue.id)
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["enqueue", "cancel"]
    # and no overdue email ever goes out for the dose that was given
    run_days(service, clinic, [dt.date(2026, 4, 25), dt.date(2026, 4, 26)], pid)
    assert not [s for s in subjects(clinic, pid) if "overdue" in s]


def test_refused_message_is_retried_with_backoff_then_given_up(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10)
    clinic.mailbox.before_accept = lambda m: "451 4.3.0 mailbox busy, try later"
    service = clinic.services.reminders
    clinic.clock.set(dt.date(2026, 3, 31))
    first = service.run(patient_ids=[pid])
    assert first.failed >= 1 and first.sent == 0
    again = service.run(patient_ids=[pid])  # within the backoff: nothing is tried
    assert again.failed == 0
    clinic.clock.instant += dt.timedelta(seconds=61)
    assert service.run(patient_ids=[pid]).failed >= 1  # attempt 2, next wait 120 s
    clinic.clock.instant += dt.timedelta(seconds=121)
    assert service.run(patient_ids=[pid]).given_up >= 1  # attempt 3 of 3
    with clinic.services.db.reading() as session:
        row = session.scalars(
            select(OutboxRow).where(OutboxRow.patient_id == pid, OutboxRow.kind == "book_injection")
        ).one()
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == row.id).order_by(AuditEntry.id)
        ).all()
    assert row.state == "given_up" and row.attempts == 3 and "451" in (row.last_error or "")
    assert actions == ["enqueue", "sending", "failed", "sending", "failed", "sending", "given_up"]
    clinic.mailbox.before_accept = None
    clinic.clock.instant += dt.timedelta(days=1)
    service.run(patient_ids=[pid])
    assert not [s for s in subjects(clinic, pid) if "Book" in s]


def test_quiet_hours_hold_a_reminder_until_morning(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10, quiet_start="21:00", quiet_end="08:00")
    service = clinic.services.reminders
    clinic.clock.set(dt.date(2026, 3, 31), hour=6, minute=30)  # 07:30 in London (BST)
    report = service.run(patient_ids=[pid])
    assert report.quiet >= 1 and not subjects(clinic, pid)
    clinic.clock.set(dt.date(2026, 3, 31), hour=7, minute=5)  # 08:05 BST
    service.run(patient_ids=[pid])
    assert any("Book" in s for s in subjects(clinic, pid))


def test_clinic_is_told_when_the_dose_is_overdue(clinic: Clinic) -> None:
    pid = ada(clinic)
    clinic.services.reminders.set_clinic_email(SYSTEM, clinic.clinic_id, "nurses@elm.test")
    run_days(clinic.services.reminders, clinic, [dt.date(2026, 4, 25)], pid)
    to_clinic = clinic.mailbox.to("nurses@elm.test")
    assert [str(m["Subject"]) for m in to_clinic] == ["Overdue B12 injection: Ada Lovelace"]
    assert any("overdue" in s for s in subjects(clinic, pid))


def test_crash_after_the_server_accepted_resends_under_the_same_message_id(clinic: Clinic) -> None:
    """The residual window (ADR 0051): accepted by SMTP, then the runner dies before "sent"."""
    pid = ada(clinic, lead_days=10)
    service = clinic.services.reminders
    clinic.clock.set(dt.date(2026, 3, 31))
    service._enqueue(dt.date(2026, 3, 31), RunReport(dt.date(2026, 3, 31)), [pid])
    row = next(
        r
        for r in service.outbox.due(dt.date(2026, 3, 31))
        if r.patient_id == pid and r.kind == "book_injection"
    )
    claimed = service.outbox.claim(row.id, "dies-after-smtp", dt.date(2026, 3, 31))
    assert claimed is not None
    first = EmailMessage()
    first["To"], first["From"], first["Message-ID"], first["Subject"] = (
        claimed.address,
        "r@clinic.test",
        claimed.message_id,
        "first attempt",
    )
    first.set_content("x")
    assert service.mailer is not None
    service.mailer.send(first)  # accepted ... and the process "dies" before marking it sent
    service.run(patient_ids=[pid])  # lease still held: not sent again yet
    assert (
        len(
            [m for m in clinic.mailbox.to(claimed.address) if m["Message-ID"] == claimed.message_id]
        )
        == 1
    )
    clinic.clock.instant += dt.timedelta(seconds=61)  # the lease lapses
    service.run(patient_ids=[pid])
    same = [m for m in clinic.mailbox.to(claimed.address) if m["Message-ID"] == claimed.message_id]
    assert len(same) == 2  # a duplicate, recognisable by its Message-ID


def test_two_runners_never_hold_one_row(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10)
    service = clinic.services.reminders
    clinic.clock.set(dt.date(2026, 3, 31))
    service._enqueue(dt.date(2026, 3, 31), RunReport(dt.date(2026, 3, 31)), [pid])
    row = next(r for r in service.outbox.due(dt.date(2026, 3, 31)) if r.patient_id == pid)
    assert service.outbox.claim(row.id, "runner-a", dt.date(2026, 3, 31)) is not None
    assert service.outbox.claim(row.id, "runner-b", dt.date(2026, 3, 31)) is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"channel": "email"}, "email"),
        ({"channel": "email", "email": "not-an-address"}, "email"),
        ({"channel": "sms", "email": "a@b.test"}, "channel"),
        ({"channel": "both", "email": "a@b.test", "lead_days": 90}, "lead_days"),
        ({"channel": "both", "email": "a@b.test", "time_zone": "Mars/Olympus"}, "time_zone"),
        (
            {"channel": "both", "email": "a@b.test", "quiet_start": "25:00", "quiet_end": "07:00"},
            "quiet_start",
        ),
        ({"channel": "both", "email": "a@b.test", "quiet_start": "22:00"}, "quiet_end"),
        ({"channel": "both", "email": "a@b.test", "colour": "red"}, "colour"),
    ],
)
def test_bad_settings_name_the_field(
    clinic: Clinic, settings: dict[str, object], field: str
) -> None:
    pid = ada(clinic)
    with pytest.raises(InvalidInput) as caught:
        clinic.services.reminders.set_preferences(SYSTEM, pid, settings)
    assert field in [e["loc"] for e in caught.value.errors]


def test_changing_the_lead_time_moves_a_queued_reminder(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=14)
    service = clinic.services.reminders
    run_days(service, clinic, [dt.date(2026, 3, 20)], pid)

    def booking() -> OutboxRow:
        with clinic.services.db.reading() as session:
            return session.scalars(
                select(OutboxRow).where(
                    OutboxRow.patient_id == pid, OutboxRow.kind == "book_injection"
                )
            ).one()

    assert booking().send_on == dt.date(2026, 3, 27)
    service.run(patient_ids=[pid])  # nothing changed: nothing written
    assert booking().send_on == dt.date(2026, 3, 27)
    service.set_preferences(
        SYSTEM, pid, {"channel": "email", "email": f"{pid}@patients.test", "lead_days": 10}
    )
    run_days(service, clinic, [dt.date(2026, 3, 21)], pid)
    assert booking().send_on == dt.date(2026, 3, 31)
    run_days(service, clinic, [dt.date(2026, 3, 27)], pid)
    assert not [s for s in subjects(clinic, pid) if "Book" in s]  # not on the old day


def test_without_a_mail_server_reminders_wait_in_the_outbox(clinic: Clinic) -> None:
    pid = ada(clinic, lead_days=10)
    service = clinic.services.reminders
    mailer, service.mailer = service.mailer, None
    try:
        clinic.clock.set(dt.date(2026, 3, 31))
        report = service.run(patient_ids=[pid])
        assert report.enqueued and not (report.sent or report.failed or report.given_up)
    finally:
        service.mailer = mailer
    service.run(patient_ids=[pid])  # the server is back: they go out
    assert any("Book" in s for s in subjects(clinic, pid))
