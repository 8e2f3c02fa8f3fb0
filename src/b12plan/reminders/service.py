"""Reminder use cases: a patient's settings, the calendar feed's secret, and the runner.

``ReminderService`` sits beside ``RecordsService`` and uses it for every patient read, so the
access rules (ADR 0012) are the records service's: whoever may see a patient may see and change
their reminder settings. The runner acts as a named system job (``reminders``) in the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import socket
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from b12plan.core import Assessment
from b12plan.core.model import Case
from b12plan.reminders.feed import feed_calendar
from b12plan.reminders.knowledge import ReminderRules
from b12plan.reminders.mail import DeliveryError, SmtpMailer, build_email
from b12plan.reminders.outbox import Claimed, Outbox, Recipient
from b12plan.reminders.plan import (
    CLINIC,
    PATIENT,
    Reminder,
    injections_on_hold,
    plan_reminders,
    self_given,
)
from b12plan.reminders.text import LANGUAGES, compose
from b12plan.service import NotFound, Principal, RecordsService, ServiceError
from b12plan.service.carers import CarerService
from b12plan.service.errors import FieldError, Forbidden, InvalidInput, field_error
from b12plan.store import Author, Repository
from b12plan.store.models import AuditEntry, Clinic, OutboxRow, Patient, ReminderPreferences

CHANNELS = ("none", "email", "calendar", "both")
DEFAULT_ZONE = "Europe/London"
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
SYSTEM = Principal.system("reminders")


@dataclass(frozen=True)
class Preferences:
    """A patient's reminder settings (defaults when none were saved: no email, London, en)."""

    channel: str = "none"
    email: str | None = None
    lead_days: int | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    time_zone: str = DEFAULT_ZONE
    language: str = "en"
    calendar_active: bool = False

    @property
    def wants_email(self) -> bool:
        return self.channel in ("email", "both") and bool(self.email)

    @property
    def wants_calendar(self) -> bool:
        return self.channel in ("calendar", "both")


SETTABLE = ("channel", "email", "lead_days", "quiet_start", "quiet_end", "time_zone", "language")
"""The preferences a patient (or the clinic for them) sets; ``calendar_active`` is the feed's."""


@dataclass(frozen=True)
class BookingRow:
    """Something a clinic patient needs booked in the next days."""

    patient_id: str
    display_name: str
    what: str  # plain language: "B12 injection", or the check-up's title
    due: dt.date
    earliest: dt.date | None
    overdue_after: dt.date | None


@dataclass(frozen=True)
class NoShowRow:
    """A dose reminder went out, the dose's due date has passed, and no dose is recorded."""

    patient_id: str
    display_name: str
    due: dt.date
    reminded_on: dt.date
    reminder: str  # the reminder kind that was sent
    days_late: int


@dataclass
class RunReport:
    """What one ``run`` did (the CLI prints it; tests read it)."""

    as_of: dt.date
    patients: int = 0
    enqueued: int = 0
    cancelled: int = 0
    sent: int = 0
    failed: int = 0
    given_up: int = 0
    quiet: int = 0
    taken_by_others: int = 0
    errors: list[str] = field(default_factory=list)


def quiet_until(now: dt.datetime, prefs: Preferences) -> dt.datetime | None:
    """When the patient's quiet hours end, if ``now`` is inside them; else ``None``.

    Quiet hours may span midnight (22:00-07:30). Times are the patient's local wall clock.
    """
    if not prefs.quiet_start or not prefs.quiet_end or prefs.quiet_start == prefs.quiet_end:
        return None
    zone = zoneinfo.ZoneInfo(prefs.time_zone)
    local = now.astimezone(zone)
    start = dt.time.fromisoformat(prefs.quiet_start)
    end = dt.time.fromisoformat(prefs.quiet_end)
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:
        inside = t >= start or t < end
        end_day = local.date() + dt.timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    return dt.datetime.combine(end_day, end, tzinfo=zone).astimezone(dt.UTC)


def runner_name() -> str:
    """Who holds a lease: host, process and a random part (two runners never share one)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ReminderService:
    """Settings, the calendar secret, the plan of a stored patient, and the delivery run."""

    def __init__(
        self,
        records: RecordsService,
        outbox: Outbox,
        rules: ReminderRules,
        *,
        mailer: SmtpMailer | None,
        sender: str,
        settings_url: str | None = None,
        carers: CarerService | None = None,
    ) -> None:
        self.records = records
        self.db = records.db
        self.clock = records.clock
        self.outbox = outbox
        self.rules = rules
        self.mailer = mailer
        self.sender = sender
        self.settings_url = settings_url
        self.carers = carers

    # --- settings -----------------------------------------------------------------------------

    def preferences(self, who: Principal, patient_id: str) -> Preferences:
        self.records.get_patient(who, patient_id)  # access check (NotFound if out of reach)
        with self.db.reading() as session:
            return _prefs(session.get(ReminderPreferences, patient_id))

    def set_preferences(self, who: Principal, patient_id: str, data: dict[str, Any]) -> Preferences:
        """Validate and save; every change is audited (what changed, not the address)."""
        self.records.get_patient(who, patient_id)
        prefs = self._validate(data)
        now = self.clock.now()
        with self.db.writing() as session:
            row = session.get(ReminderPreferences, patient_id)
            if row is None:
                row = ReminderPreferences(patient_id=patient_id)
                session.add(row)
            before = _prefs(row) if row.channel is not None else Preferences()
            row.channel = prefs.channel
            row.email = prefs.email
            row.lead_days = prefs.lead_days
            row.quiet_start = prefs.quiet_start
            row.quiet_end = prefs.quiet_end
            row.time_zone = prefs.time_zone
            row.language = prefs.language
            row.updated_at = now
            row.updated_by = who.user_id
            changed = [name for name in SETTABLE if getattr(before, name) != getattr(prefs, name)]
            self._repo(session, who, now).audit(
                "update",
                "reminder_preferences",
                patient_id,
                patient_id=patient_id,
                detail="changed: " + (", ".join(changed) or "nothing"),
            )
            session.flush()
            return _prefs(row)

    def set_clinic_email(self, who: Principal, clinic_id: str, email: str | None) -> None:
        """Where the clinic's copies of overdue reminders go (``None``: nowhere)."""
        if who.role != "admin" and not (who.role == "clinician" and who.clinic_id == clinic_id):
            raise Forbidden("only the clinic's clinicians and admins may set its reminder address")
        if email is not None and not _EMAIL.fullmatch(email):
            raise InvalidInput([field_error("email", "not an email address", "email")])
        now = self.clock.now()
        with self.db.writing() as session:
            clinic = session.get(Clinic, clinic_id)
            if clinic is None:
                raise NotFound(f"no clinic {clinic_id!r}")
            clinic.reminder_email = email
            self._repo(session, who, now).audit(
                "update",
                "clinic",
                clinic_id,
                detail="reminder address " + ("set" if email else "removed"),
            )

    def rotate_calendar_secret(self, who: Principal, patient_id: str) -> str:
        """A new feed secret (the old URL stops working). Shown once; only its hash is kept."""
        self.records.get_patient(who, patient_id)
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.writing() as session:
            row = self._row_for_update(session, patient_id, now, who)
            row.calendar_secret_hash = _digest(secret)
            row.calendar_secret_at = now
            self._repo(session, who, now).audit(
                "rotate",
                "calendar_feed",
                patient_id,
                patient_id=patient_id,
                detail="new calendar feed secret",
            )
        return secret

    def revoke_calendar_secret(self, who: Principal, patient_id: str) -> None:
        self.records.get_patient(who, patient_id)
        now = self.clock.now()
        with self.db.writing() as session:
            row = self._row_for_update(session, patient_id, now, who)
            row.calendar_secret_hash = None
            row.calendar_secret_at = None
            self._repo(session, who, now).audit(
                "revoke",
                "calendar_feed",
                patient_id,
                patient_id=patient_id,
                detail="calendar feed turned off",
            )

    def patient_for_secret(self, secret: str) -> str | None:
        """The patient whose feed this secret opens (None: unknown or revoked)."""
        if not 20 <= len(secret) <= 100:
            return None
        with self.db.reading() as session:
            return session.scalar(
                select(ReminderPreferences.patient_id).where(
                    ReminderPreferences.calendar_secret_hash == _digest(secret)
                )
            )

    def feed(self, secret: str) -> bytes | None:
        """The calendar feed a secret opens, as of today (None: no such feed)."""
        pid = self.patient_for_secret(secret)
        if pid is None:
            return None
        today = self.clock.today()
        prefs = self.preferences(SYSTEM, pid)
        case, assessment = self.assessment_of(SYSTEM, pid, today)
        patient = self.records.get_patient(SYSTEM, pid)
        with self.db.reading() as session:
            revision = session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.patient_id == pid)
            )
            clinic = session.get(Clinic, patient.clinic_id)
        return feed_calendar(
            assessment,
            case,
            self.rules,
            patient_id=pid,
            as_of=today,
            revision=int(revision or 0),
            lead_days=prefs.lead_days,
            clinic_name=clinic.name if clinic is not None else "your clinic",
        )

    # --- plans --------------------------------------------------------------------------------

    def assessment_of(
        self, who: Principal, patient_id: str, as_of: dt.date
    ) -> tuple[Case, Assessment]:
        """The stored patient's case and assessment on ``as_of`` (as ``who`` may see it)."""
        case = self.records.patient_case(who, patient_id, as_of=as_of)
        return case, self.records.assess_patient(who, patient_id, as_of=as_of)

    def plan(self, who: Principal, patient_id: str, as_of: dt.date) -> tuple[Reminder, ...]:
        """The reminders this patient would get from ``as_of`` on (their own lead time)."""
        prefs = self.preferences(who, patient_id)
        case, assessment = self.assessment_of(who, patient_id, as_of)
        return plan_reminders(assessment, case, self.rules, as_of=as_of, lead_days=prefs.lead_days)

    # --- clinic lists -------------------------------------------------------------------------

    def booking_list(self, who: Principal, as_of: dt.date, days: int) -> list[BookingRow]:
        """Clinic-given doses due by ``as_of + days`` (overdue ones too: they need booking most)
        and check-ups due from ``as_of`` to then (staff)."""
        self._require_staff(who)
        end = as_of + dt.timedelta(days=days)
        rows: list[BookingRow] = []
        for patient in self._patients(who):
            try:
                case, assessment = self.assessment_of(who, patient.id, as_of)
            except ServiceError:
                continue
            window = assessment.next_dose
            if (
                window is not None
                and window.due <= end
                and not self_given(case)
                and not injections_on_hold(assessment)
                and not (assessment.regimen is not None and assessment.regimen.route == "oral")
            ):
                rows.append(
                    BookingRow(
                        patient.id,
                        patient.display_name,
                        "B12 injection",
                        window.due,
                        window.earliest,
                        window.overdue_after,
                    )
                )
            for item in assessment.monitoring:
                if as_of <= item.due <= end:
                    rows.append(
                        BookingRow(
                            patient.id,
                            patient.display_name,
                            self.rules.item(item.item).title,
                            item.due,
                            None,
                            None,
                        )
                    )
        return sorted(rows, key=lambda r: (r.due, r.display_name, r.patient_id, r.what))

    def did_not_attend(self, who: Principal, as_of: dt.date) -> list[NoShowRow]:
        """Reminder sent, due date passed, no dose recorded (the plan still waits for it)."""
        self._require_staff(who)
        visible = {p.id: p for p in self._patients(who)}
        with self.db.reading() as session:
            sent = session.execute(
                select(
                    OutboxRow.patient_id, OutboxRow.target_date, OutboxRow.kind, OutboxRow.sent_at
                )
                .where(
                    OutboxRow.state == "sent",
                    OutboxRow.kind.in_(("book_injection", "injection_due", "injection_overdue")),
                    OutboxRow.target_date < as_of,
                    OutboxRow.patient_id.in_(list(visible)),
                )
                .order_by(OutboxRow.patient_id, OutboxRow.target_date, OutboxRow.sent_at)
            ).all()
        first: dict[tuple[str, dt.date], tuple[str, dt.datetime | None]] = {}
        for pid, target, kind, sent_at in sent:
            first.setdefault((pid, target), (kind, sent_at))
        rows = []
        for (pid, target), (kind, sent_at) in first.items():
            try:
                _, assessment = self.assessment_of(who, pid, as_of)
            except ServiceError:
                continue
            window = assessment.next_dose
            if window is None or window.due != target:
                continue  # a dose was recorded (the plan moved on), or the plan stopped
            rows.append(
                NoShowRow(
                    pid,
                    visible[pid].display_name,
                    target,
                    sent_at.date() if sent_at is not None else target,
                    kind,
                    (as_of - target).days,
                )
            )
        return sorted(rows, key=lambda r: (-r.days_late, r.display_name, r.patient_id))

    def _patients(self, who: Principal) -> list[Any]:
        out: list[Any] = []
        while True:
            page = self.records.list_patients(who, limit=200, offset=len(out))
            out.extend(page.items)
            if len(out) >= page.total or not page.items:
                return out

    @staticmethod
    def _require_staff(who: Principal) -> None:
        if who.role not in ("clinician", "admin"):
            raise Forbidden("only clinic staff see the clinic's reminder lists")

    # --- delivery -----------------------------------------------------------------------------

    def run(
        self,
        as_of: dt.date | None = None,
        *,
        owner: str | None = None,
        patient_ids: list[str] | None = None,
        on_sent: Callable[[Claimed], None] | None = None,
    ) -> RunReport:
        """Enqueue what the plans say, then send every due row this runner can claim.

        Idempotent: a second run on the same day finds the rows present and sent. Safe beside
        another runner: each row is claimed with a lease before its SMTP conversation.
        """
        day = as_of or self.clock.today()
        owner = owner or runner_name()
        report = RunReport(as_of=day)
        self._enqueue(day, report, patient_ids)
        if self.mailer is not None:  # without a mail server, rows wait (never "given up")
            self._deliver(day, owner, report, on_sent)
        return report

    def _enqueue(self, day: dt.date, report: RunReport, only: list[str] | None) -> None:
        with self.db.reading() as session:
            query = select(Patient.id, Patient.clinic_id).order_by(Patient.id)
            if only is not None:
                query = query.where(Patient.id.in_(only))
            patients = session.execute(query).all()
            prefs = {p.patient_id: p for p in session.scalars(select(ReminderPreferences))}
            clinics = {c.id: c for c in session.scalars(select(Clinic))}
        known = self.outbox.snapshot()
        open_rows = {
            pid
            for pid, rows in known.items()
            if any(state in ("pending", "failed") for state, _, _ in rows.values())
        }
        carers = self.carers.emails() if self.carers is not None else {}
        for pid, clinic_id in patients:
            pref = _prefs(prefs.get(pid))
            clinic = clinics.get(clinic_id)
            recipients: dict[str, list[Recipient]] = {}
            if pref.wants_email and pref.email:
                recipients[PATIENT] = [Recipient(PATIENT, PATIENT, pref.email)]
            for carer_id, email in carers.get(pid, []):  # carers get what the patient gets
                recipients.setdefault(PATIENT, []).append(
                    Recipient("carer", f"carer:{carer_id}", email)
                )
            if clinic is not None and clinic.reminder_email:
                recipients[CLINIC] = [Recipient(CLINIC, CLINIC, clinic.reminder_email)]
            if not recipients and pid not in open_rows:
                continue
            report.patients += 1
            pairs: list[tuple[Reminder, Recipient]] = []
            if recipients:
                try:
                    case, assessment = self.assessment_of(SYSTEM, pid, day)
                except ServiceError as exc:
                    report.errors.append(f"{pid}: {exc.detail}")
                    continue
                for reminder in plan_reminders(
                    assessment, case, self.rules, as_of=day, lead_days=pref.lead_days
                ):
                    for role in reminder.audience:
                        for who in recipients.get(role, []):
                            pairs.append((reminder, who))
            added, cancelled = self.outbox.sync(pid, pairs, known.get(pid, {}))
            report.enqueued += added
            report.cancelled += cancelled

    def _deliver(
        self,
        day: dt.date,
        owner: str,
        report: RunReport,
        on_sent: Callable[[Claimed], None] | None,
    ) -> None:
        rows = self.outbox.due(day)
        if not rows:
            return
        context = self._context({r.patient_id for r in rows})
        for row in rows:
            name, clinic_name, pref = context.get(
                row.patient_id, (row.patient_id, "your clinic", Preferences())
            )
            now = self.clock.now()
            if row.recipient != CLINIC and quiet_until(now, pref) is not None:
                report.quiet += 1
                continue
            claimed = self.outbox.claim(row.id, owner, day)
            if claimed is None:
                report.taken_by_others += 1
                continue
            message = compose(
                kind=claimed.kind,
                target=claimed.target_date,
                payload=claimed.payload,
                recipient_role=claimed.recipient.split(":")[0],
                patient_name=name,
                patient_id=claimed.patient_id,
                clinic_name=clinic_name,
                language=pref.language,
                settings_url=self.settings_url,
            )
            zone = zoneinfo.ZoneInfo(pref.time_zone)
            email = build_email(
                message,
                to=claimed.address,
                sender=self.sender,
                message_id=claimed.message_id,
                sent_at=now.astimezone(zone),
            )
            assert self.mailer is not None
            try:
                self.mailer.send(email)
            except DeliveryError as exc:
                state = self.outbox.failed(claimed, owner, str(exc))
                report.given_up += state == "given_up"
                report.failed += state == "failed"
                continue
            if self.outbox.sent(claimed, owner):
                report.sent += 1
                if on_sent is not None:
                    on_sent(claimed)

    def _context(self, patient_ids: set[str]) -> dict[str, tuple[str, str, Preferences]]:
        out: dict[str, tuple[str, str, Preferences]] = {}
        with self.db.reading() as session:
            clinics = {c.id: c.name for c in session.scalars(select(Clinic))}
            prefs = {
                p.patient_id: p
                for p in session.scalars(
                    select(ReminderPreferences).where(
                        ReminderPreferences.patient_id.in_(list(patient_ids))
                    )
                )
            }
        for pid in patient_ids:
            try:
                patient = self.records.get_patient(SYSTEM, pid)
            except NotFound:
                continue
            out[pid] = (
                patient.display_name,
                clinics.get(patient.clinic_id, patient.clinic_id),
                _prefs(prefs.get(pid)),
            )
        return out

    # --- internals ----------------------------------------------------------------------------

    def _validate(self, data: dict[str, Any]) -> Preferences:
        problems: list[FieldError] = []
        for key in sorted(set(data) - set(SETTABLE)):
            problems.append(field_error(key, "unknown setting", "unknown"))

        def text(key: str) -> str | None:
            value = data.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            if not isinstance(value, str) or len(value) > 320:
                problems.append(field_error(key, "expected text (at most 320 characters)", "type"))
                return None
            return value.strip()

        channel = text("channel") or "none"
        if channel not in CHANNELS:
            problems.append(
                field_error("channel", f"expected one of {', '.join(CHANNELS)}", "enum")
            )
        email = text("email")
        if email is not None and not _EMAIL.fullmatch(email):
            problems.append(field_error("email", "not an email address", "email"))
        if channel in ("email", "both") and email is None:
            problems.append(field_error("email", "required for email reminders", "missing"))
        lead: int | None = None
        raw = data.get("lead_days")
        if raw not in (None, ""):
            try:
                lead = int(str(raw))
            except ValueError:
                problems.append(field_error("lead_days", "expected a whole number of days", "type"))
            else:
                low, high = self.rules.patient_lead_min, self.rules.patient_lead_max
                if not low <= lead <= high:
                    problems.append(
                        field_error("lead_days", f"must be from {low} to {high} days", "range")
                    )
        quiet = {}
        for key in ("quiet_start", "quiet_end"):
            value = text(key)
            if value is not None and not _TIME.fullmatch(value):
                problems.append(field_error(key, "expected a time as HH:MM (24-hour)", "time"))
            quiet[key] = value
        if (quiet["quiet_start"] is None) != (quiet["quiet_end"] is None):
            problems.append(
                field_error("quiet_end", "give both ends of the quiet hours", "missing")
            )
        zone = text("time_zone") or DEFAULT_ZONE
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(field_error("time_zone", f"unknown time zone {zone[:64]!r}", "zone"))
        language = text("language") or "en"
        if language not in LANGUAGES:
            problems.append(
                field_error("language", f"expected one of {', '.join(LANGUAGES)}", "enum")
            )
        if problems:
            raise InvalidInput(problems)
        return Preferences(
            channel=channel,
            email=email,
            lead_days=lead,
            quiet_start=quiet["quiet_start"],
            quiet_end=quiet["quiet_end"],
            time_zone=zone,
            language=language,
        )

    def _row_for_update(
        self, session: Any, patient_id: str, now: dt.datetime, who: Principal
    ) -> ReminderPreferences:
        row = session.get(ReminderPreferences, patient_id)
        if row is None:
            row = ReminderPreferences(
                patient_id=patient_id,
                channel="none",
                time_zone=DEFAULT_ZONE,
                language="en",
                updated_at=now,
                updated_by=who.user_id,
            )
            session.add(row)
        return row  # type: ignore[no-any-return]

    def _repo(self, session: Any, who: Principal, now: dt.datetime) -> Repository:
        return Repository(
            session,
            author=Author(name=who.label, user_id=who.user_id),
            now=now,
            new_id=lambda: "",
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _prefs(row: ReminderPreferences | None) -> Preferences:
    if row is None:
        return Preferences()
    return Preferences(
        channel=row.channel,
        email=row.email,
        lead_days=row.lead_days,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone or DEFAULT_ZONE,
        language=row.language or "en",
        calendar_active=row.calendar_secret_hash is not None,
    )


class ReminderLoop:
    """``run`` every ``interval`` seconds on a daemon thread, off the web server's event loop.

    Each pass is a normal run (idempotent, leased), so a loop in every server process, or a
    loop beside a cron job, never sends a row twice. Errors are reported and the loop goes on.
    """

    def __init__(
        self,
        service: ReminderService,
        interval_seconds: float,
        *,
        report: Callable[[str], None] = print,
    ) -> None:
        import threading

        self.service = service
        self.interval = interval_seconds
        self.report = report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="b12plan-reminders", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                r = self.service.run()
                self.report(
                    f"reminders {r.as_of.isoformat()}: {r.enqueued} queued, {r.sent} sent,"
                    f" {r.failed} to retry, {r.given_up} given up, {r.quiet} in quiet hours"
                )
            except Exception as exc:  # the loop must outlive one bad pass
                self.report(f"reminders: run failed: {type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)
