"""The tables: SQLAlchemy 2 typed ORM, one class per table.

Clinical rows are versions. A row is written once; the only change it may ever see is being
marked ``entered-in-error`` (with ``superseded_by`` naming the correcting row, or empty for a
retraction). The migration adds database triggers that refuse anything else, and refuse DELETE,
so "nothing is lost" holds even for code that bypasses the repository.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

ACTIVE = "active"
ENTERED_IN_ERROR = "entered-in-error"
STATUSES = (ACTIVE, ENTERED_IN_ERROR)
ROLES = ("clinician", "patient", "admin", "carer")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and read back timezone-aware on every backend.

    SQLite keeps no offset, so without this a value would come back naive and compare wrongly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Clinic(Base):
    __tablename__ = "clinics"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reminder_email: Mapped[str | None] = mapped_column(String(320))  # overdue reminders (0004)


class Patient(Base):
    """A patient's identity: the id every record hangs on, and the clinic that holds it.

    Demographics are versioned separately (``Demographics``) so they can be corrected without
    changing the id the records refer to.
    """

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role"),
        CheckConstraint("role <> 'patient' OR patient_id IS NOT NULL", name="patient_linked"),
        CheckConstraint("role <> 'clinician' OR clinic_id IS NOT NULL", name="clinician_clinic"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    clinic_id: Mapped[str | None] = mapped_column(ForeignKey("clinics.id"))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuthToken(Base):
    """An issued bearer token or session cookie, kept only as its SHA-256 digest.

    Tokens are 256-bit random values, so a fast digest is enough: there is nothing to brute-force
    that a slow password hash would protect.
    """

    __tablename__ = "auth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # bearer | cookie
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the token was last used (written at most once a minute): the idle timeout's clock.
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Who did what, when, to which entity; written in the same transaction as the change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(30))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"), index=True)
    before_row_id: Mapped[str | None] = mapped_column(String(36))
    after_row_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[str | None] = mapped_column(Text)
    # The hash chain (``b12plan.store.chain``): this row's SHA-256 over its fields and the
    # previous row's hash, so an edited, removed or inserted row breaks every later link.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """The one row naming the audit chain's last entry: the lock every audited write takes.

    Holding it (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock) keeps the chain
    linear under concurrent writers, and it also records the tail, so cutting rows off the end
    of the log is detected too.
    """

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class SignInThrottle(Base):
    """Failed sign-ins counted per key (``account:NAME`` or ``address:IP``), shared by workers."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RecordMixin:
    """Columns shared by every versioned clinical table.

    ``id`` is the record's stable id (what the API shows); ``row_id`` names one version of it.
    At most one version per ``id`` is ``active`` (a partial unique index says so).
    """

    kind: ClassVar[str]

    row_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)

    @declared_attr
    def patient_id(cls) -> Mapped[str]:
        return mapped_column(ForeignKey("patients.id"), index=True)

    @declared_attr
    def superseded_by(cls) -> Mapped[str | None]:
        # Deferred: the old version is marked before its successor is inserted.
        table: str = cls.__tablename__  # type: ignore[attr-defined]
        return mapped_column(ForeignKey(f"{table}.row_id", deferrable=True, initially="DEFERRED"))

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        table: str = cls.__tablename__  # type: ignore[attr-defined]
        return (
            UniqueConstraint("id", "version"),
            Index(
                f"uq_{table}_active_id",
                "id",
                unique=True,
                sqlite_where=text(f"status = '{ACTIVE}'"),
                postgresql_where=text(f"status = '{ACTIVE}'"),
            ),
            CheckConstraint(f"status IN {STATUSES!r}", name="status"),
            CheckConstraint("version >= 1", name="version"),
        )


class Demographics(RecordMixin, Base):
    """One version of a patient's demographics; its ``id`` is the patient's id."""

    __tablename__ = "demographics"
    kind = "demographics"

    display_name: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str | None] = mapped_column(String(20))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    jurisdiction: Mapped[str] = mapped_column(String(10))
    deceased_date: Mapped[dt.date | None] = mapped_column(Date)


class CauseRow(RecordMixin, Base):
    __tablename__ = "causes"
    kind = "causes"

    code: Mapped[str] = mapped_column(String(60))


class SymptomRow(RecordMixin, Base):
    __tablename__ = "symptoms"
    kind = "symptoms"

    date: Mapped[dt.date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(60))
    symptom_status: Mapped[str] = mapped_column(String(20))
    reporter: Mapped[str] = mapped_column(String(20), server_default=text("'clinician'"))
    """Who assessed the symptom (contract v1.1): rows written before v1.1 were clinicians'."""


class ObservationRow(RecordMixin, Base):
    __tablename__ = "observations"
    kind = "observations"

    date: Mapped[dt.date] = mapped_column(Date)
    code: Mapped[str | None] = mapped_column(String(60))
    loinc: Mapped[str | None] = mapped_column(String(20))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    reference_low: Mapped[float | None] = mapped_column(Float)
    reference_high: Mapped[float | None] = mapped_column(Float)


class AdministrationRow(RecordMixin, Base):
    __tablename__ = "administrations"
    kind = "administrations"

    date: Mapped[dt.date] = mapped_column(Date)
    product: Mapped[str] = mapped_column(String(60))
    brand: Mapped[str | None] = mapped_column(String(500))
    dose: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(10))
    given_by: Mapped[str | None] = mapped_column(String(10))
    site: Mapped[str | None] = mapped_column(String(500))
    lot: Mapped[str | None] = mapped_column(String(100))


class PrescriptionRow(RecordMixin, Base):
    __tablename__ = "prescriptions"
    kind = "prescriptions"

    product: Mapped[str] = mapped_column(String(60))
    brand: Mapped[str | None] = mapped_column(String(500))
    dose: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(10))
    phase: Mapped[str] = mapped_column(String(20))
    interval_days: Mapped[int] = mapped_column(Integer)
    start: Mapped[dt.date] = mapped_column("start_date", Date)
    end: Mapped[dt.date | None] = mapped_column("end_date", Date)
    given_by: Mapped[str | None] = mapped_column(String(10))  # 0006
    site: Mapped[str | None] = mapped_column(String(500))  # 0006


class MedicationRow(RecordMixin, Base):
    __tablename__ = "medications"
    kind = "medications"

    code: Mapped[str] = mapped_column(String(60))
    start: Mapped[dt.date] = mapped_column("start_date", Date)
    end: Mapped[dt.date | None] = mapped_column("end_date", Date)


class AdverseEventRow(RecordMixin, Base):
    __tablename__ = "adverse_events"
    kind = "adverse_events"

    date: Mapped[dt.date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(60))


class DecisionRow(RecordMixin, Base):
    """A clinician's recorded decision (contract v1.1): ``by`` whom, and why (required)."""

    __tablename__ = "decisions"
    kind = "decisions"

    date: Mapped[dt.date] = mapped_column(Date)
    code: Mapped[str] = mapped_column(String(60))
    by: Mapped[str] = mapped_column("decided_by", String(500))
    reason: Mapped[str] = mapped_column(Text)


class PriorTreatmentRow(RecordMixin, Base):
    """Treatment before the first dose recorded here (contract v1.1); one current per patient."""

    __tablename__ = "prior_treatments"
    kind = "prior_treatment"

    since: Mapped[dt.date] = mapped_column("since_date", Date)
    loading_completed: Mapped[bool] = mapped_column(Boolean)


RECORD_MODELS: dict[str, type[RecordMixin]] = {
    m.kind: m
    for m in (
        Demographics,
        CauseRow,
        SymptomRow,
        ObservationRow,
        AdministrationRow,
        PrescriptionRow,
        MedicationRow,
        AdverseEventRow,
        DecisionRow,
        PriorTreatmentRow,
    )
}
"""Every versioned table by its kind (the API path segment, and the contract's list name)."""


class CdsTokenSeen(Base):
    """A CDS client's JWT id (``jti``), kept until the token expires so it cannot be replayed.

    In the database, not in process memory, so every worker refuses a token any of them has
    seen. Rows are purged once expired (they are not history: nothing clinical hangs on them).
    """

    __tablename__ = "cds_tokens_seen"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of iss, jti
    issuer: Mapped[str] = mapped_column(String(300))
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class CdsCardIssued(Base):
    """A card b12plan returned to a CDS client, so that feedback naming its ``uuid`` can say
    which finding was accepted or overridden, for which patient, and check it was this caller's.
    """

    __tablename__ = "cds_cards_issued"

    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(100))
    hook_instance: Mapped[str] = mapped_column(String(100))
    patient_ref: Mapped[str] = mapped_column(Text)
    code: Mapped[str | None] = mapped_column(String(60))
    indicator: Mapped[str] = mapped_column(String(10))
    caller: Mapped[str] = mapped_column(String(300))
    suggestions: Mapped[str] = mapped_column(Text)  # JSON list of the card's suggestion uuids
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


# --- reminders (revision 0004_reminders) ---------------------------------------------------------

OUTBOX_STATES = ("pending", "sending", "sent", "failed", "given_up", "cancelled")
CHANNELS = ("none", "email", "calendar", "both")


class ReminderPreferences(Base):
    """How one patient wants reminders: channel, address, lead time, quiet hours, zone, language.

    ``calendar_secret_hash`` is the SHA-256 of the calendar feed's secret (the secret itself is
    shown once and never stored), so a leaked database does not leak feed URLs.
    """

    __tablename__ = "reminder_preferences"
    __table_args__ = (CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),)

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))
    email: Mapped[str | None] = mapped_column(String(320))
    lead_days: Mapped[int | None] = mapped_column(Integer)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    time_zone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(10))
    calendar_secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    calendar_secret_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class OutboxRow(Base):
    """One reminder to one recipient; the unique key makes enqueuing idempotent."""

    __tablename__ = "reminder_outbox"
    __table_args__ = (
        UniqueConstraint("patient_id", "kind", "item", "target_date", "recipient"),
        Index("ix_reminder_outbox_state_send_on", "state", "send_on"),
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state"),
        CheckConstraint("attempts >= 0", name="attempts"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    item: Mapped[str] = mapped_column(String(60))
    target_date: Mapped[dt.date] = mapped_column(Date)
    recipient: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(320))
    send_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CarerLink(Base):
    """A carer who may see one patient's schedule, get their reminders and log doses they give.

    ``consent`` says who agreed: the patient (an invitation they made and the carer accepted) or
    the clinic (a clinician who recorded the patient's consent in ``consent_note``). A link is
    ended by setting ``revoked_at``; it is never deleted.
    """

    __tablename__ = "carer_links"
    __table_args__ = (CheckConstraint("consent IN ('clinic', 'patient')", name="consent"),)

    carer_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True, index=True)
    consent: Mapped[str] = mapped_column(String(10))
    consent_note: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    linked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CarerInvitation(Base):
    """A patient's one-time invitation for a carer (the code is kept only as its SHA-256)."""

    __tablename__ = "carer_invitations"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
