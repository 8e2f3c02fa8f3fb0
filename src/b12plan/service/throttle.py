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

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from b12plan.service.errors import TooManyAttempts
from b12plan.store import models
from b12plan.store.database import Database


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
        """Admit one password check against ``keys`` for the duration of the block, or raise
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
            if len(self._blocked) > 10_000:  # a flood from many addresses: keep the live ones
                self._blocked = {k: v for k, v in self._blocked.items() if v[0] > now}

    def record_failure(
        self, session: Session, key: str, free: int, now: dt.datetime
    ) -> dt.datetime | None:
        """Count one failure for ``key`` inside the caller's write transaction; the time the
        key is now blocked until (give it to ``remember`` once the transaction committed)."""
        row = session.get(models.SignInThrottle, key)
        if row is None:
            row = models.SignInThrottle(key=key, failures=0, last_failure_at=now)
            session.add(row)
        elif now - row.last_failure_at > self.limits.forget_after:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        beyond = row.failures - free
        if beyond > 0:
            delay = min(
                self.limits.first_delay_seconds * 2 ** min(beyond - 1, 30),
                self.limits.max_delay_seconds,
            )
            row.blocked_until = now + dt.timedelta(seconds=delay)
        return row.blocked_until

    def clear(self, session: Session, key: str) -> None:
        session.execute(delete(models.SignInThrottle).where(models.SignInThrottle.key == key))
        with self._lock:
            self._blocked.pop(key, None)
