"""Initial store: clinics, users, tokens, patients, versioned clinical records, audit log.

Written out table by table (not ``metadata.create_all``) so this revision keeps meaning the same
schema whatever the models become later. Database triggers make the history append-only: rows are
never deleted, audit entries never change, and a record version may only be marked
entered-in-error.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _record_tables() -> dict[str, list[sa.Column[object]]]:
    return {
        "demographics": [
            sa.Column("display_name", sa.String(200), nullable=False),
            sa.Column("sex", sa.String(20), nullable=True),
            sa.Column("birth_date", sa.Date(), nullable=True),
            sa.Column("jurisdiction", sa.String(10), nullable=False),
        ],
        "causes": [sa.Column("code", sa.String(60), nullable=False)],
        "symptoms": [
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("code", sa.String(60), nullable=False),
            sa.Column("symptom_status", sa.String(20), nullable=False),
        ],
        "observations": [
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("code", sa.String(60), nullable=True),
            sa.Column("loinc", sa.String(20), nullable=True),
            sa.Column("value", sa.Float(), nullable=False),
            sa.Column("unit", sa.String(20), nullable=False),
            sa.Column("reference_low", sa.Float(), nullable=True),
            sa.Column("reference_high", sa.Float(), nullable=True),
        ],
        "administrations": [
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("product", sa.String(60), nullable=False),
            sa.Column("brand", sa.String(500), nullable=True),
            sa.Column("dose", sa.Float(), nullable=False),
            sa.Column("unit", sa.String(10), nullable=False),
            sa.Column("route", sa.String(10), nullable=False),
            sa.Column("given_by", sa.String(10), nullable=True),
            sa.Column("site", sa.String(500), nullable=True),
            sa.Column("lot", sa.String(100), nullable=True),
        ],
        "prescriptions": [
            sa.Column("product", sa.String(60), nullable=False),
            sa.Column("brand", sa.String(500), nullable=True),
            sa.Column("dose", sa.Float(), nullable=False),
            sa.Column("unit", sa.String(10), nullable=False),
            sa.Column("route", sa.String(10), nullable=False),
            sa.Column("phase", sa.String(20), nullable=False),
            sa.Column("interval_days", sa.Integer(), nullable=False),
            sa.Column("start_date", sa.Date(), nullable=False),
            sa.Column("end_date", sa.Date(), nullable=True),
        ],
        "medications": [
            sa.Column("code", sa.String(60), nullable=False),
            sa.Column("start_date", sa.Date(), nullable=False),
            sa.Column("end_date", sa.Date(), nullable=True),
        ],
        "adverse_events": [
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("code", sa.String(60), nullable=False),
        ],
    }


SHARED_COLUMNS = (
    "row_id",
    "id",
    "version",
    "status",
    "recorded_at",
    "recorded_by",
    "note",
    "patient_id",
    "superseded_by",
)


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clinics"),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("clinic_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_patients"),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name="fk_patients_clinic_id_clinics"
        ),
    )
    op.create_index("ix_patients_clinic_id", "patients", ["clinic_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("clinic_id", sa.String(64), nullable=True),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name="fk_users_clinic_id_clinics"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_users_patient_id_patients"
        ),
        sa.CheckConstraint("role IN ('clinician', 'patient', 'admin')", name=op.f("ck_users_role")),
        sa.CheckConstraint(
            "role <> 'patient' OR patient_id IS NOT NULL", name=op.f("ck_users_patient_linked")
        ),
        sa.CheckConstraint(
            "role <> 'clinician' OR clinic_id IS NOT NULL", name=op.f("ck_users_clinician_clinic")
        ),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_auth_tokens"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_auth_tokens_user_id_users"),
    )
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_user_id", sa.String(36), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("before_row_id", sa.String(36), nullable=True),
        sa.Column("after_row_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name="fk_audit_log_actor_user_id_users"
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name="fk_audit_log_patient_id_patients"
        ),
    )
    op.create_index("ix_audit_log_patient_id", "audit_log", ["patient_id"])

    for table, own_columns in _record_tables().items():
        op.create_table(
            table,
            sa.Column("row_id", sa.String(36), nullable=False),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("recorded_at", TS, nullable=False),
            sa.Column("recorded_by", sa.String(36), nullable=True),
            sa.Column("note", sa.Text(), nullable=True),
            sa.Column("patient_id", sa.String(64), nullable=False),
            sa.Column("superseded_by", sa.String(36), nullable=True),
            *own_columns,
            sa.PrimaryKeyConstraint("row_id", name=f"pk_{table}"),
            sa.UniqueConstraint("id", "version", name=f"uq_{table}_id_version"),
            sa.ForeignKeyConstraint(
                ["recorded_by"], ["users.id"], name=f"fk_{table}_recorded_by_users"
            ),
            sa.ForeignKeyConstraint(
                ["patient_id"], ["patients.id"], name=f"fk_{table}_patient_id_patients"
            ),
            sa.ForeignKeyConstraint(
                ["superseded_by"],
                [f"{table}.row_id"],
                name=f"fk_{table}_superseded_by_{table}",
                deferrable=True,
                initially="DEFERRED",
            ),
            sa.CheckConstraint(
                "status IN ('active', 'entered-in-error')", name=op.f(f"ck_{table}_status")
            ),
            sa.CheckConstraint("version >= 1", name=op.f(f"ck_{table}_version")),
        )
        op.create_index(f"ix_{table}_patient_id", table, ["patient_id"])
        op.create_index(
            f"uq_{table}_active_id",
            table,
            ["id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()


NEVER_DELETED = ("clinics", "patients", "users", "audit_log")


def _sqlite_triggers() -> None:
    for table in (*NEVER_DELETED, *_record_tables()):
        op.execute(
            f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'b12plan: rows of {table} are never deleted'); END"
        )
    for table in ("audit_log", "patients"):
        op.execute(
            f"CREATE TRIGGER {table}_never_changed BEFORE UPDATE ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'b12plan: rows of {table} are never changed'); END"
        )
    for table, own_columns in _record_tables().items():
        columns = [c for c in SHARED_COLUMNS if c not in ("status", "superseded_by")]
        columns += [c.name for c in own_columns]
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
        op.execute(
            f"CREATE TRIGGER {table}_version_frozen BEFORE UPDATE ON {table} "
            f"WHEN OLD.status <> 'active' OR NEW.status <> 'entered-in-error' OR {changed} "
            f"BEGIN SELECT RAISE(ABORT, 'b12plan: a version of {table} is written once; "
            f"it may only be marked entered-in-error'); END"
        )


def _postgresql_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION b12plan_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'b12plan: % on % is not allowed (the history is append-only)',
            TG_OP, TG_TABLE_NAME;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION b12plan_version_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.status <> 'active' OR NEW.status <> 'entered-in-error'
             OR (to_jsonb(NEW) - 'status' - 'superseded_by')
                IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'superseded_by') THEN
            RAISE EXCEPTION
              'b12plan: a version of % is written once; it may only be marked entered-in-error',
              TG_TABLE_NAME;
          END IF;
          RETURN NEW;
        END $$
        """
    )
    for table in (*NEVER_DELETED, *_record_tables()):
        op.execute(
            f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION b12plan_refuse()"
        )
    for table in ("audit_log", "patients"):
        op.execute(
            f"CREATE TRIGGER {table}_never_changed BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION b12plan_refuse()"
        )
    for table in _record_tables():
        op.execute(
            f"CREATE TRIGGER {table}_version_frozen BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION b12plan_version_frozen()"
        )


def downgrade() -> None:
    raise RuntimeError(
        "the initial b12plan schema holds clinical history and is never dropped by a migration;"
        " restore a backup instead"
    )
