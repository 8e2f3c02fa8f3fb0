"""Reminders: each patient's reminder settings, the clinic's reminder address, and the outbox.

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
down_revision: str | None = "0001"
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


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS reminder_outbox_never_deleted ON reminder_outbox")
    op.drop_table("reminder_outbox")
    op.drop_table("reminder_preferences")
    with op.batch_alter_table("clinics") as batch:
        batch.drop_column("reminder_email")
