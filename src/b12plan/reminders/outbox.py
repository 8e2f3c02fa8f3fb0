"""The reminder outbox: rows to send, claimed under a lease, each state change audited.

States: ``pending`` -> ``sending`` (claimed, with a lease) -> ``sent``; a failed attempt goes to
``failed`` with ``next_attempt_at`` (exponential backoff) and back to ``sending`` when that
comes, until ``max_attempts``, then ``given_up``. A row the current plan no longer contains
(the dose was given, the plan moved, the patient turned reminders off) is ``cancelled``.

Delivery is at-least-once with a known, small window (ADR 0051): "sending" is committed before
the SMTP conversation and "sent" after it. If the process dies between the server's acceptance
and the commit, the lease runs out and the row is sent again, under the same ``Message-ID``
(made from the row id), so the duplicate can be recognised. A killed run that had not finished
the SMTP conversation leaves nothing delivered, and the rerun sends the row exactly once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from b12plan.reminders.plan import Reminder
from b12plan.store import Author, Database, Repository
from b12plan.store.models import OutboxRow

PENDING, SENDING, SENT, FAILED, GIVEN_UP, CANCELLED = (
    "pending",
    "sending",
    "sent",
    "failed",
    "given_up",
    "cancelled",
)
OPEN_STATES = (PENDING, FAILED)
ACTOR = Author(name="reminders")


@dataclass(frozen=True)
class Recipient:
    """Who gets a reminder: ``patient``, ``clinic`` or ``carer:<user id>``, at which address."""

    role: str  # patient | clinic | carer
    key: str  # the recipient column: "patient", "clinic", "carer:<id>"
    address: str


@dataclass(frozen=True)
class Claimed:
    """A row this runner holds the lease on, with what is needed to write the message."""

    id: str
    patient_id: str
    kind: str
    item: str
    target_date: dt.date
    recipient: str
    address: str
    send_on: dt.date
    attempts: int
    message_id: str
    payload: dict[str, Any]


def row_id(patient_id: str, reminder: Reminder, recipient: str) -> str:
    """The row's id: the same reminder to the same recipient always gets the same id."""
    key = "\x1f".join(
        (patient_id, reminder.kind, reminder.item or "", reminder.target.isoformat(), recipient)
    )
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def message_id(row: str) -> str:
    """One Message-ID per outbox row, on every attempt: a resend is recognisably the same."""
    return f"<reminder-{row}@b12plan>"


def payload_of(reminder: Reminder) -> dict[str, Any]:
    window = reminder.window
    return {
        "title": reminder.title,
        "lead_days": reminder.lead_days,
        "self_given": reminder.self_given,
        "source": reminder.source,
        "window": None
        if window is None
        else {
            "earliest": window.earliest.isoformat(),
            "due": window.due.isoformat(),
            "overdue_after": window.overdue_after.isoformat(),
        },
    }


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait after the n-th failed attempt: base * 2**(n-1), capped; then give up."""

    base_seconds: float = 60.0
    cap_seconds: float = 6 * 3600.0
    max_attempts: int = 5

    def delay(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(
            seconds=min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        )


class Outbox:
    """Enqueue, claim, and settle reminder rows; each method is one transaction."""

    def __init__(
        self,
        db: Database,
        *,
        now: Callable[[], dt.datetime],
        lease: dt.timedelta = dt.timedelta(minutes=5),
        backoff: Backoff = Backoff(),
    ) -> None:
        self.db = db
        self.now = now
        self.lease = lease
        self.backoff = backoff

    def sync(
        self,
        patient_id: str,
        plan: Sequence[tuple[Reminder, Recipient]],
        known: dict[str, tuple[str, dt.date, str]] | None = None,
    ) -> tuple[int, int]:
        """Add the plan's missing rows; cancel open rows the plan no longer has.

        ``known``: the patient's rows as read before (id -> state, send_on, address), from
        ``snapshot``; when they already match the plan, nothing is written. Returns (added,
        cancelled). Safe to run concurrently: inserts that meet an existing key
        do nothing (``ON CONFLICT DO NOTHING``), so two runners never add a row twice.
        """
        now = self.now()
        wanted = {row_id(patient_id, r, who.key): (r, who) for r, who in plan}
        if known is not None and _in_step(wanted, known):
            return 0, 0  # nothing to add, move or cancel: no write transaction at all
        added = cancelled = 0
        with self.db.writing() as session:
            repo = self._repo(session, now)
            insert = sqlite_insert if self.db.is_sqlite else pg_insert
            for rid, (reminder, who) in wanted.items():
                values = {
                    "id": rid,
                    "patient_id": patient_id,
                    "kind": reminder.kind,
                    "item": reminder.item or "",
                    "target_date": reminder.target,
                    "recipient": who.key,
                    "address": who.address,
                    "send_on": reminder.send_on,
                    "state": PENDING,
                    "attempts": 0,
                    "message_id": message_id(rid),
                    "payload": json.dumps(payload_of(reminder), sort_keys=True),
                    "created_at": now,
                    "updated_at": now,
                }
                # RETURNING tells a new row from a conflict on both backends (rowcount does
                # not: psycopg reports -1 for an ORM-executed insert).
                inserted = session.execute(
                    insert(OutboxRow)
                    .values(**values)
                    .on_conflict_do_nothing()
                    .returning(OutboxRow.id)
                ).first()
                if inserted is not None:
                    added += 1
                    repo.audit(
                        "enqueue",
                        "reminder",
                        rid,
                        patient_id=patient_id,
                        detail=f"{reminder.kind} {reminder.item or ''} for"
                        f" {reminder.target.isoformat()} to {who.key} on"
                        f" {reminder.send_on.isoformat()}".replace("  ", " "),
                    )
                else:
                    self._follow(session, patient_id, rid, reminder, who, now)
            stale = session.scalars(
                select(OutboxRow).where(
                    OutboxRow.patient_id == patient_id, OutboxRow.state.in_(OPEN_STATES)
                )
            ).all()
            for row in stale:
                if row.id in wanted:
                    continue
                done = session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id == row.id, OutboxRow.state.in_(OPEN_STATES))
                    .values(state=CANCELLED, updated_at=now)
                )
                if done.rowcount:  # type: ignore[attr-defined]
                    cancelled += 1
                    repo.audit(
                        "cancel",
                        "reminder",
                        row.id,
                        patient_id=patient_id,
                        detail=f"{row.state} -> cancelled: no longer in the plan",
                    )
        return added, cancelled

    def snapshot(self) -> dict[str, dict[str, tuple[str, dt.date, str]]]:
        """Every row's id, state, send day and address, by patient (one query for a run)."""
        out: dict[str, dict[str, tuple[str, dt.date, str]]] = {}
        with self.db.reading() as session:
            rows = session.execute(
                select(
                    OutboxRow.patient_id,
                    OutboxRow.id,
                    OutboxRow.state,
                    OutboxRow.send_on,
                    OutboxRow.address,
                )
            ).all()
        for pid, rid, state, send_on, address in rows:
            out.setdefault(pid, {})[rid] = (state, send_on, address)
        return out

    def due(self, as_of: dt.date, *, limit: int = 1000) -> list[OutboxRow]:
        """Rows that may be claimed now: open and due, or ``sending`` with a lapsed lease."""
        now = self.now()
        with self.db.reading() as session:
            return list(
                session.scalars(
                    select(OutboxRow)
                    .where(_claimable(as_of, now))
                    .order_by(OutboxRow.send_on, OutboxRow.patient_id, OutboxRow.id)
                    .limit(limit)
                ).all()
            )

    def claim(self, rid: str, owner: str, as_of: dt.date) -> Claimed | None:
        """Take the row's lease, or ``None`` if another runner has it (or it is settled)."""
        now = self.now()
        with self.db.writing() as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == rid, _claimable(as_of, now))
                .values(
                    state=SENDING,
                    lease_owner=owner,
                    lease_until=now + self.lease,
                    attempts=OutboxRow.attempts + 1,
                    updated_at=now,
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            row = session.get(OutboxRow, rid, populate_existing=True)
            assert row is not None
            self._repo(session, now).audit(
                "sending",
                "reminder",
                rid,
                patient_id=row.patient_id,
                detail=f"attempt {row.attempts} by {owner}, lease until"
                f" {(now + self.lease).isoformat(timespec='seconds')}",
            )
            return Claimed(
                id=row.id,
                patient_id=row.patient_id,
                kind=row.kind,
                item=row.item,
                target_date=row.target_date,
                recipient=row.recipient,
                address=row.address,
                send_on=row.send_on,
                attempts=row.attempts,
                message_id=row.message_id,
                payload=json.loads(row.payload),
            )

    def sent(self, claimed: Claimed, owner: str) -> bool:
        """Mark delivered (only while this runner still holds the lease)."""
        now = self.now()
        return self._settle(
            claimed, owner, {"state": SENT, "sent_at": now, "last_error": None}, "sent", now
        )

    def failed(self, claimed: Claimed, owner: str, error: str) -> str:
        """Record a failed attempt: retry later with backoff, or give up. Returns the state."""
        now = self.now()
        values: dict[str, Any]
        if claimed.attempts >= self.backoff.max_attempts:
            state, values = GIVEN_UP, {"state": GIVEN_UP}
        else:
            state = FAILED
            values = {
                "state": FAILED,
                "next_attempt_at": now + self.backoff.delay(claimed.attempts),
            }
        values["last_error"] = error[:2000]
        self._settle(claimed, owner, values, state, now, detail=error[:500])
        return state

    def postpone(self, claimed: Claimed, owner: str, until: dt.datetime, why: str) -> None:
        """Give the row back without counting an attempt (quiet hours began meanwhile)."""
        now = self.now()
        self._settle(
            claimed,
            owner,
            {"state": PENDING, "next_attempt_at": until, "attempts": claimed.attempts - 1},
            "postponed",
            now,
            detail=why,
        )

    def rows(self, patient_ids: Iterable[str] | None = None) -> list[OutboxRow]:
        """Rows (all states), for reports and tests."""
        query = select(OutboxRow).order_by(OutboxRow.send_on, OutboxRow.patient_id, OutboxRow.id)
        if patient_ids is not None:
            query = query.where(OutboxRow.patient_id.in_(list(patient_ids)))
        with self.db.reading() as session:
            return list(session.scalars(query).all())

    def _settle(
        self,
        claimed: Claimed,
        owner: str,
        values: dict[str, Any],
        action: str,
        now: dt.datetime,
        *,
        detail: str | None = None,
    ) -> bool:
        with self.db.writing() as session:
            result = session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id == claimed.id,
                    OutboxRow.state == SENDING,
                    OutboxRow.lease_owner == owner,
                )
                .values(lease_owner=None, lease_until=None, updated_at=now, **values)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            self._repo(session, now).audit(
                action,
                "reminder",
                claimed.id,
                patient_id=claimed.patient_id,
                detail=f"attempt {claimed.attempts}" + (f": {detail}" if detail else ""),
            )
            return True

    def _follow(
        self,
        session: Session,
        patient_id: str,
        rid: str,
        reminder: Reminder,
        who: Recipient,
        now: dt.datetime,
    ) -> None:
        """An open row keeps up with the plan: a new send day (lead time) or a new address."""
        result = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == rid,
                OutboxRow.state.in_(OPEN_STATES),
                or_(OutboxRow.send_on != reminder.send_on, OutboxRow.address != who.address),
            )
            .values(send_on=reminder.send_on, address=who.address, updated_at=now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            self._repo(session, now).audit(
                "reschedule",
                "reminder",
                rid,
                patient_id=patient_id,
                detail=f"send on {reminder.send_on.isoformat()} to {who.key}",
            )

    def _repo(self, session: Session, now: dt.datetime) -> Repository:
        return Repository(session, author=ACTOR, now=now, new_id=lambda: "")


def _in_step(
    wanted: dict[str, tuple[Reminder, Recipient]], known: dict[str, tuple[str, dt.date, str]]
) -> bool:
    """Every wanted row exists (open ones on the plan's day and address); no stale open row."""
    for rid, (reminder, who) in wanted.items():
        row = known.get(rid)
        if row is None:
            return False
        state, send_on, address = row
        if state in OPEN_STATES and (send_on != reminder.send_on or address != who.address):
            return False
    return not any(
        state in OPEN_STATES and rid not in wanted for rid, (state, _, _) in known.items()
    )


def _claimable(as_of: dt.date, now: dt.datetime) -> Any:
    return or_(
        and_(
            OutboxRow.state.in_(OPEN_STATES),
            OutboxRow.send_on <= as_of,
            or_(OutboxRow.next_attempt_at.is_(None), OutboxRow.next_attempt_at <= now),
        ),
        and_(OutboxRow.state == SENDING, OutboxRow.lease_until < now),
    )
