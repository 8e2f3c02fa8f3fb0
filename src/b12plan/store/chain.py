"""The audit log's hash chain: each entry's SHA-256 covers its fields and the previous hash.

An entry's hash is ``sha256(GENESIS-or-previous-hash | canonical JSON of its fields)``; the one
row of ``audit_chain`` names the last entry and its hash. Editing an entry changes its hash;
removing or inserting one breaks the next entry's ``prev_hash``; cutting entries off the end no
longer matches the head. ``verify`` walks the log and reports the first broken link. The
append-only triggers stop accidents and ordinary code; the chain detects a database owner who
drops a trigger first. (Anyone able to rewrite every later row and the head can forge a chain:
publish the head hash elsewhere, e.g. in a daily report, to detect that too.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from b12plan.store.models import AuditChainHead, AuditEntry

GENESIS = "0" * 64
HEAD_ID = 1
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
# The triggers that keep history append-only (v0001) and user changes audited (v0002).
EXPECTED_TRIGGERS = (
    "audit_log_never_deleted",
    "audit_log_never_changed",
    "users_never_deleted",
    "users_change_audited",
    "patients_never_deleted",
    "patients_never_changed",
    "audit_chain_never_deleted",
)


def canonical_at(at: dt.datetime) -> str:
    """A timestamp written the same way whichever backend stored it (UTC, microseconds)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(values: dict[str, Any], prev_hash: str) -> str:
    """The hash of one entry (``values`` holds ``FIELDS``; ``at`` a datetime)."""
    fields = [canonical_at(values["at"]) if name == "at" else values[name] for name in FIELDS]
    payload = json.dumps(["b12plan-audit-v1", prev_hash, fields], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(session: Session, entry: AuditEntry) -> None:
    """Give ``entry`` the next id and its hash, and move the head: inside the write transaction.

    The head row is read ``FOR UPDATE``, so concurrent writers on PostgreSQL queue here (SQLite
    writers already hold the database's one write lock) and the chain stays a single line.
    """
    head = session.execute(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    ).scalar_one()
    entry.id = head.last_id + 1
    entry.prev_hash = head.last_hash
    entry.row_hash = entry_hash({name: getattr(entry, name) for name in FIELDS}, head.last_hash)
    head.last_id = entry.id
    head.last_hash = entry.row_hash


@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found: the entries checked and the first problem (None when intact)."""

    checked: int
    head_hash: str
    problem: str | None
    entry_id: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def _rows(connection: Connection, batch: int = 5000) -> Iterator[dict[str, Any]]:
    last = -1
    columns = ", ".join((*FIELDS, "prev_hash", "row_hash"))
    while True:
        rows = connection.execute(
            text(f"SELECT {columns} FROM audit_log WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": batch},
        ).mappings()
        chunk = [dict(r) for r in rows]
        if not chunk:
            return
        yield from chunk
        last = chunk[-1]["id"]


def _at(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite hands raw text to a textual query
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value


def verify(connection: Connection) -> Verdict:
    """Walk the whole log in id order and report the first broken link."""
    missing = sorted(set(EXPECTED_TRIGGERS) - set(_triggers(connection)))
    prev = GENESIS
    prev_id = 0
    checked = 0
    for row in _rows(connection):
        row["at"] = _at(row["at"])
        if row["prev_hash"] != prev:
            after = f"entry {prev_id}" if prev_id else "the start of the log"
            return Verdict(
                checked,
                prev,
                f"entry {row['id']} does not follow {after}: an entry between them was removed"
                " or changed",
                row["id"],
            )
        if entry_hash(row, prev) != row["row_hash"]:
            return Verdict(
                checked, prev, f"entry {row['id']} was changed after it was written", row["id"]
            )
        prev = row["row_hash"]
        prev_id = row["id"]
        checked += 1
    head = connection.execute(
        text("SELECT last_id, last_hash FROM audit_chain WHERE id = :id"), {"id": HEAD_ID}
    ).first()
    if head is None:
        return Verdict(checked, prev, "the chain head (table audit_chain) is missing")
    if head.last_id != prev_id or head.last_hash != prev:
        return Verdict(
            checked,
            prev,
            f"the log ends at entry {prev_id} but the chain head names entry {head.last_id}:"
            " entries were removed from the end (or the head was changed)",
            prev_id + 1,
        )
    if missing:
        return Verdict(checked, prev, f"protective triggers are missing: {', '.join(missing)}")
    return Verdict(checked, prev, None)


def _triggers(connection: Connection) -> Sequence[str]:
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    else:
        query = (
            "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
            "AND c.relnamespace = to_regnamespace(current_schema())"
        )
    return [str(name) for name in connection.execute(text(query)).scalars()]
