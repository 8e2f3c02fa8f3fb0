"""Security: hash-chained audit log, sign-in throttle, session idle clock, audited user changes.

- ``audit_log.prev_hash`` / ``row_hash`` and the one-row ``audit_chain`` head; existing entries
  are chained here in id order (the append-only trigger is lifted for that one backfill).
- ``sign_in_throttle``: failed sign-ins per account and per client address, shared by workers.
- ``auth_tokens.last_seen_at``: when a session was last used (idle timeout).
- ``users_change_audited``: an UPDATE of ``users`` is refused unless the latest audit entry of
  the transaction is about that user (the service writes it first).

The hash function is copied here (not imported) so this revision keeps meaning what it meant;
``b12plan.store.chain.entry_hash`` must stay byte-for-byte the same algorithm.

Revision ID: 0002_security
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002_security"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
GENESIS = "0" * 64
FIELDS = (
    "id",
    "at",
    "actor_user_id",
    "actor",
    "action",
    "entity_type",
    "entity_id",
    "patient_id",
    "before_row_id",
    "after_row_id",
    "detail",
)


def _hash(row: dict[str, Any], prev: str) -> str:
    at = row["at"]
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    values = [
        at.astimezone(dt.UTC).isoformat(timespec="microseconds") if n == "at" else row[n]
        for n in FIELDS
    ]
    payload = json.dumps(["b12plan-audit-v1", prev, values], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("auth_tokens", sa.Column("last_seen_at", TS, nullable=True))
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("row_hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_chain"),
    )
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", TS, nullable=False),
        sa.Column("blocked_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_sign_in_throttle"),
    )
    _chain_existing_entries(sqlite)
    if sqlite:
        _sqlite_triggers()
    else:
        _postgresql_triggers()


def _chain_existing_entries(sqlite: bool) -> None:
    bind = op.get_bind()
    op.execute("DROP TRIGGER audit_log_never_changed" + ("" if sqlite else " ON audit_log"))
    columns = ", ".join(FIELDS)
    prev, last_id = GENESIS, 0
    update = sa.text("UPDATE audit_log SET prev_hash = :prev, row_hash = :hash WHERE id = :id")
    while True:
        rows = [
            dict(r)
            for r in bind.execute(
                sa.text(f"SELECT {columns} FROM audit_log WHERE id > :last ORDER BY id LIMIT 5000"),
                {"last": last_id},
            ).mappings()
        ]
        if not rows:
            break
        params = []
        for row in rows:
            digest = _hash(row, prev)
            params.append({"prev": prev, "hash": digest, "id": row["id"]})
            prev, last_id = digest, row["id"]
        bind.execute(update, params)
    bind.execute(
        sa.text("INSERT INTO audit_chain (id, last_id, last_hash) VALUES (1, :id, :hash)"),
        {"id": last_id, "hash": prev},
    )
    if sqlite:
        op.execute(
            "CREATE TRIGGER audit_log_never_changed BEFORE UPDATE ON audit_log BEGIN "
            "SELECT RAISE(ABORT, 'b12plan: rows of audit_log are never changed'); END"
        )
    else:
        op.execute(
            "CREATE TRIGGER audit_log_never_changed BEFORE UPDATE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION b12plan_refuse()"
        )


_USER_AUDITED = (
    "EXISTS (SELECT 1 FROM audit_log WHERE id = (SELECT max(id) FROM audit_log) "
    "AND entity_type = 'user' AND entity_id = NEW.id)"
)


def _sqlite_triggers() -> None:
    op.execute(
        f"CREATE TRIGGER users_change_audited BEFORE UPDATE ON users WHEN NOT {_USER_AUDITED} "
        "BEGIN SELECT RAISE(ABORT, 'b12plan: a change to a user needs its audit entry'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_chain_never_deleted BEFORE DELETE ON audit_chain BEGIN "
        "SELECT RAISE(ABORT, 'b12plan: the audit chain head is never deleted'); END"
    )


def _postgresql_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION b12plan_user_change_audited() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NOT {_USER_AUDITED} THEN
            RAISE EXCEPTION 'b12plan: a change to user % needs its audit entry', NEW.id;
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER users_change_audited BEFORE UPDATE ON users "
        "FOR EACH ROW EXECUTE FUNCTION b12plan_user_change_audited()"
    )
    op.execute(
        "CREATE TRIGGER audit_chain_never_deleted BEFORE DELETE ON audit_chain "
        "FOR EACH ROW EXECUTE FUNCTION b12plan_refuse()"
    )


def downgrade() -> None:
    raise RuntimeError(
        "the audit chain and sign-in history are part of the record; restore a backup instead"
    )
