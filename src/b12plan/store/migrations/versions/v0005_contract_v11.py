"""Contract v1.1 in the store: symptom reporters, clinicians' decisions, prior treatment, death.

- ``symptoms.reporter``: who assessed the symptom. Every row written before v1.1 was entered
  through a clinician's channel or as a clinician's record, so existing rows become
  ``clinician`` (the contract's meaning of an absent reporter).
- ``demographics.deceased_date``: versioned with the rest of the demographics.
- ``decisions`` and ``prior_treatments``: new versioned record tables, append-only like the
  others (never deleted; a version is written once and may only be marked entered-in-error).

Self-contained: the append-only triggers are written here (the PostgreSQL functions of 0001 are
reused; they compare whole rows, so new columns are covered). SQLite's triggers name their
columns, so the two changed tables get theirs rebuilt from the columns the table has now, which
keeps whatever another migration added.

Revision ID: 0005_contract_v11
Revises: 0003_cds_trust (chained after main's head when main was merged in; written against 0001)
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_contract_v11"
down_revision: str | None = "0004_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

NEW_TABLES = ("decisions", "prior_treatments")


def _own_columns() -> dict[str, list[sa.Column[object]]]:
    """Each new table's own columns (new objects per call: a Column belongs to one table)."""
    return {
        "decisions": [
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("code", sa.String(60), nullable=False),
            sa.Column("decided_by", sa.String(500), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
        ],
        "prior_treatments": [
            sa.Column("since_date", sa.Date(), nullable=False),
            sa.Column("loading_completed", sa.Boolean(), nullable=False),
        ],
    }


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # These triggers name the columns they freeze: rebuilt below to cover the new ones.
        for table in ("symptoms", "demographics"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_version_frozen")
    op.add_column(
        "symptoms",
        sa.Column("reporter", sa.String(20), nullable=False, server_default=sa.text("'clinician'")),
    )
    op.add_column("demographics", sa.Column("deceased_date", sa.Date(), nullable=True))
    for table, own_columns in _own_columns().items():
        _create_record_table(table, own_columns)
    if sqlite:
        for table in ("symptoms", "demographics", *NEW_TABLES):
            _sqlite_version_frozen(table)
        for table in NEW_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'b12plan: rows of {table} are never deleted'); END"
            )
    else:
        for table in NEW_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_never_deleted BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION b12plan_refuse()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_version_frozen BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION b12plan_version_frozen()"
            )


def _create_record_table(table: str, own_columns: list[sa.Column[object]]) -> None:
    """A versioned record table, exactly as 0001 writes them (the models' ``RecordMixin``)."""
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


def _sqlite_version_frozen(table: str) -> None:
    """A version is written once: only ``status`` (active -> entered-in-error) and
    ``superseded_by`` may change, and every other column the table has is compared."""
    columns = [
        c["name"]
        for c in sa.inspect(op.get_bind()).get_columns(table)
        if c["name"] not in ("status", "superseded_by")
    ]
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
    op.execute(
        f"CREATE TRIGGER {table}_version_frozen BEFORE UPDATE ON {table} "
        f"WHEN OLD.status <> 'active' OR NEW.status <> 'entered-in-error' OR {changed} "
        f"BEGIN SELECT RAISE(ABORT, 'b12plan: a version of {table} is written once; "
        f"it may only be marked entered-in-error'); END"
    )


def downgrade() -> None:
    raise RuntimeError(
        "contract v1.1 records (decisions, reporters, prior treatment) are clinical history and"
        " are never dropped by a migration; restore a backup instead"
    )
