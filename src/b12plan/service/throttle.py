"""Sign-in throttling: failures counted per account and per client address, in the database.

Each key (``account:<name>``, ``address:<ip>``) may fail a few times freely; after that every
failure blocks the key for a doubling delay (1 s, 2 s, 4 s ... up to the cap). A key with no
failure for ``forget_after`` starts again. The state is a table, so several server processes
share it; the table is the source of truth.

A sign-in is admitted (``attempt``) before any password work, and refused with
``TooManyAttempts`` while a key is blocked. Under a flood that refusal must cost next to
nothing, so each process remembers the blocks it has seen (read or written) for at most
``remember_blocks_for``: a refused try then runs no statement at all. A key that is one failure
away from a block (or past it) gets one password check at a time in each process: without that,
every client waiting for the block to lift would get a real Argon2 check at the same moment.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from b12plan.service.errors import TooManyAttempts
from b12plan.store import models
from b12plan.store.database import Database
from b12plan.store.models import UTCDateTime

MAX_REMEMBERED = 10_000  # blocks one process remembers (a few MB at most)


@dataclass(frozen=True)
class SignInLimits:
    """How many failures are free, and how the delay grows after that."""

    account_free_failures: int = 5
    address_free_failures: int = 20
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 900.0
    forget_after: dt.timedelta = dt.timedelta(hours=1)
    # How stale this process's memory of a block may be: another worker's ``clear`` (a new
    # password set by an admin) lets the account in here at most this much later.
    remember_blocks_for: dt.timedelta = dt.timedelta(seconds=2)


def _printable(text: str) -> str:
    """Keys are stored text: no NUL or control characters (PostgreSQL refuses NUL)."""
    return "".join(c if c.isprintable() else "?" for c in text[:150])


def account_key(username: str) -> str:
    return "account:" + _printable(username.strip().lower())


def address_key(address: str) -> str:
    return "address:" + _printable(address)


class SignInThrottle:
    def __init__(self, db: Database, limits: SignInLimits) -> None:
        self.db = db
        self.limits = limits
        self._lock = threading.Lock()
        self._blocked: dict[str, tuple[dt.datetime, dt.datetime]] = {}  # until, when learnt
        self._checking: collections.Counter[str] = collections.Counter()

    def keys(self, username: str, address: str | None) -> dict[str, int]:
        """The keys one sign-in counts against, each with its number of free failures."""
        keys = {account_key(username): self.limits.account_free_failures}
        if address:
            keys[address_key(address)] = self.limits.address_free_failures
        return keys

    @contextmanager
    def attempt(self, keys: Mapping[str, int], now: dt.datetime) -> Iterator[None]:
        """Admit one password check against ``keys`` (for the ``with`` body), or raise
        ``TooManyAttempts`` (a blocked key; or a key one failure from a block whose check is
        already running in this process). A remembered block costs no statement; otherwise one
        indexed read, which takes no write lock."""
        wait = self._remembered_wait(keys, now)
        if wait:
            raise TooManyAttempts(wait)
        with self.db.reading() as session:
            rows = session.scalars(
                select(models.SignInThrottle).where(models.SignInThrottle.key.in_(list(keys)))
            ).all()
        self.remember({key: None for key in keys} | {r.key: r.blocked_until for r in rows}, now)
        wait = self._remembered_wait(keys, now)
        if wait:
            raise TooManyAttempts(wait)
        on_the_edge = {
            row.key
            for row in rows
            if row.failures >= keys[row.key]
            and now - row.last_failure_at <= self.limits.forget_after
        }
        with self._lock:
            if any(self._checking[key] for key in on_the_edge):
                raise TooManyAttempts(1)
            self._checking.update(keys)
        try:
            yield
        finally:
            with self._lock:
                self._checking.subtract(keys)
                for key in keys:
                    if self._checking[key] <= 0:
                        del self._checking[key]

    def _remembered_wait(self, keys: Mapping[str, int], now: dt.datetime) -> int:
        """Seconds until every remembered block on ``keys`` lifts (0: none remembered)."""
        fresh = now - self.limits.remember_blocks_for
        with self._lock:
            known = [self._blocked.get(key) for key in keys]
        waits = [
            (until - now).total_seconds()
            for until, learnt in filter(None, known)
            if until > now and fresh <= learnt <= now
        ]
        return math.ceil(max(waits)) if waits else 0

    def remember(self, blocked_until: Mapping[str, dt.datetime | None], now: dt.datetime) -> None:
        """Note blocks just read from, or committed to, the table (None: not blocked)."""
        with self._lock:
            for key, until in blocked_until.items():
                if until is not None and until > now:
                    self._blocked[key] = (until, now)
                else:
                    self._blocked.pop(key, None)
            if len(self._blocked) > MAX_REMEMBERED:  # a flood from many addresses
                self._blocked = {k: v for k, v in self._blocked.items() if v[0] > now}
                if len(self._blocked) > MAX_REMEMBERED // 2:
                    self._blocked.clear()  # forgetting only costs reads: the table knows

    def record_failure(
        self, session: Session, key: str, free: int, now: dt.datetime
    ) -> dt.datetime | None:
        """Count one failure for ``key`` in one statement inside the caller's write transaction;
        return the time the key is now blocked until (give it to ``remember`` after the commit).

        An upsert, so failures from several threads or workers at once all count, and two first
        failures of a new key cannot collide on its primary key. The doubling delay is chosen
        in SQL from the failure count, among block ends computed here (no date arithmetic in
        SQL, which differs between the backends)."""
        table = models.SignInThrottle
        ends = self._block_ends(now)

        def blocked_until(failures: Any, otherwise: Any) -> Any:
            beyond = failures - free
            steps = [(beyond == n, _at(end)) for n, end in enumerate(ends[:-1], start=1)]
            return case(*steps, (beyond >= len(ends), _at(ends[-1])), else_=otherwise)

        insert = sqlite_insert if self.db.is_sqlite else pg_insert
        failures = case(
            (table.last_failure_at < now - self.limits.forget_after, 1), else_=table.failures + 1
        )
        statement = (
            insert(table)
            .values(
                key=key,
                failures=1,
                last_failure_at=now,
                blocked_until=ends[min(len(ends), 1 - free) - 1] if free < 1 else None,
            )
            .on_conflict_do_update(
                index_elements=[table.key],
                set_={
                    "failures": failures,
                    "last_failure_at": _at(now),
                    "blocked_until": blocked_until(failures, table.blocked_until),
                },
            )
            .returning(table.blocked_until)
        )
        until: dt.datetime | None = session.execute(statement).scalar_one()
        return until

    def _block_ends(self, now: dt.datetime) -> list[dt.datetime]:
        """When a block starting ``now`` ends after the 1st, 2nd ... failure beyond the free
        ones; the last entry holds for every later failure (the cap)."""
        ends = []
        for beyond in range(1, 32):
            delay = min(
                self.limits.first_delay_seconds * 2 ** (beyond - 1), self.limits.max_delay_seconds
            )
            ends.append(now + dt.timedelta(seconds=delay))
            if delay >= self.limits.max_delay_seconds:
                break
        return ends

    def clear(self, session: Session, key: str) -> None:
        session.execute(delete(models.SignInThrottle).where(models.SignInThrottle.key == key))
        with self._lock:
            self._blocked.pop(key, None)


def _at(moment: dt.datetime) -> Any:
    """A timestamp as a bound value of the table's own column type (UTC on every backend)."""
    return literal(moment, type_=UTCDateTime())
