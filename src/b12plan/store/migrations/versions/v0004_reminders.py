"""Reminders and carers: each patient's reminder settings, the clinic's reminder address, the
outbox, and carers (a ``carer`` role, links to patients with the consent recorded, invitations).

The outbox holds one row per (patient, kind, item, target date, recipient): the unique key is
what makes ``b12plan reminders run`` idempotent. Rows change state (pending -> sending -> sent,
or failed -> ... -> given_up, or cancelled) but are never deleted; every change is also in the
audit log.

Revision ID: 0004_reminders
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_reminders"
down_revision: str | None = "0003_cds_trust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
STATES = ("pending", "sending", "sent", "failed", "given_up", "cancelled")
CHANNELS = ("none", "email", "calendar", "both")


def upgrade() -> None:
    op.add_column("clinics", sa.Column("reminder_email", sa.String(320), nullable=True))
    op.create_table(
        "reminder_preferences",
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("lead_days", sa.Integer(), nullable=True),
        sa.Column("quiet_start", sa.String(5), nullable=True),
        sa.Column("quiet_end", sa.String(5), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("calendar_secret_hash", sa.String(64), nullable=True),
        sa.Column("calendar_secret_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("patient_id", name="pk_reminder_preferences"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_reminder_preferences_patient_id_patients"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name="fk_reminder_preferences_updated_by_users"
        ),
        sa.UniqueConstraint(
            "calendar_secret_hash", name="uq_reminder_preferences_calendar_secret_hash"
        ),
        sa.CheckConstraint(
            f"channel IN {CHANNELS!r}", name=op.f("ck_reminder_preferences_channel")
        ),
    )
    op.create_table(
        "reminder_outbox",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("item", sa.String(60), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("recipient", sa.String(80), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("send_on", sa.Date(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reminder_outbox"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_reminder_outbox_patient_id_patients"
        ),
        sa.UniqueConstraint(
            "patient_id",
            "kind",
            "item",
            "target_date",
            "recipient",
            name="uq_reminder_outbox_patient_id_kind_item_target_date_recipient",
        ),
        sa.CheckConstraint(f"state IN {STATES!r}", name=op.f("ck_reminder_outbox_state")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_reminder_outbox_attempts")),
    )
    op.create_index("ix_reminder_outbox_state_send_on", "reminder_outbox", ["state", "send_on"])
    op.create_index("ix_reminder_outbox_patient_id", "reminder_outbox", ["patient_id"])
    op.create_table(
        "carer_links",
        sa.Column("carer_user_id", sa.String(36), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("consent", sa.String(10), nullable=False),
        sa.Column("consent_note", sa.Text(), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("linked_by", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("carer_user_id", "patient_id", name="pk_carer_links"),
        sa.ForeignKeyConstraint(
            ["carer_user_id"], ["users.id"], name="fk_carer_links_carer_user_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_carer_links_patient_id_patients"
        ),
        sa.ForeignKeyConstraint(["linked_by"], ["users.id"], name="fk_carer_links_linked_by_users"),
        sa.CheckConstraint("consent IN ('clinic', 'patient')", name=op.f("ck_carer_links_consent")),
    )
    op.create_index("ix_carer_links_patient_id", "carer_links", ["patient_id"])
    op.create_table(
        "carer_invitations",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("used_by", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_carer_invitations"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_carer_invitations_patient_id_patients"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_carer_invitations_created_by_users"
        ),
        sa.ForeignKeyConstraint(
            ["used_by"], ["users.id"], name="fk_carer_invitations_used_by_users"
        ),
    )
    _allow_carer_role()
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER reminder_outbox_never_deleted BEFORE DELETE ON reminder_outbox BEGIN "
            "SELECT RAISE(ABORT, 'b12plan: rows of reminder_outbox are never deleted'); END"
        )
    else:
        # b12plan_refuse() comes with revision 0001.
        op.execute(
            "CREATE TRIGGER reminder_outbox_never_deleted BEFORE DELETE ON reminder_outbox "
            "FOR EACH ROW EXECUTE FUNCTION b12plan_refuse()"
        )


OLD_ROLES = "role IN ('clinician', 'patient', 'admin')"
NEW_ROLES = "role IN ('clinician', 'patient', 'admin', 'carer')"


def _allow_carer_role() -> None:
    """Widen ``ck_users_role`` to admit ``carer``.

    PostgreSQL: drop and re-add the constraint. SQLite cannot alter a CHECK constraint, and
    rebuilding ``users`` is not possible with foreign keys on (every table refers to it), so the
    table's stored definition is edited in place: the procedure SQLite documents for changes that
    do not alter what is on disk (every existing row satisfies the wider check). The schema
    version is bumped so open connections re-read it.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute("ALTER TABLE users DROP CONSTRAINT ck_users_role")
        op.execute(f"ALTER TABLE users ADD CONSTRAINT ck_users_role CHECK ({NEW_ROLES})")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'"
    ).scalar_one()
    if OLD_ROLES not in sql:
        raise RuntimeError(f"users table definition not as revision 0001 made it: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'users'",
        (sql.replace(OLD_ROLES, NEW_ROLES),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
    check = bind.exec_driver_sql("PRAGMA integrity_check").scalar_one()
    if check != "ok":
        raise RuntimeError(f"integrity check after widening ck_users_role: {check}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS reminder_outbox_never_deleted ON reminder_outbox")
    op.drop_table("reminder_outbox")
    op.drop_table("carer_invitations")
    op.drop_table("carer_links")
    op.drop_table("reminder_preferences")
    with op.batch_alter_table("clinics") as batch:
        batch.drop_column("reminder_email")
