"""Sign-in throttling: failures counted per account and per client address, in the database.

Each key (``account:<name>``, ``address:<ip>``) may fail a few times freely; after that every
failure blocks the key for a doubling delay (1 s, 2 s, 4 s ... up to the cap). A key with no
failure for ``forget_after`` starts again. While a key is blocked the sign-in is refused before
any password is checked (no Argon2 work, no write), so a flood costs one indexed read per try.
The state is a table, so several server processes share it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

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

    def wait_seconds(self, keys: Sequence[str], now: dt.datetime) -> int:
        """Seconds until every key may try again (0: go ahead). A read; takes no write lock."""
        with self.db.reading() as session:
            rows = session.scalars(
                select(models.SignInThrottle).where(models.SignInThrottle.key.in_(keys))
            ).all()
        waits = [
            (row.blocked_until - now).total_seconds()
            for row in rows
            if row.blocked_until is not None and row.blocked_until > now
        ]
        return math.ceil(max(waits)) if waits else 0

    def record_failure(self, session: Session, key: str, free: int, now: dt.datetime) -> None:
        """Count one failure for ``key`` inside the caller's write transaction."""
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

    def clear(self, session: Session, key: str) -> None:
        session.execute(delete(models.SignInThrottle).where(models.SignInThrottle.key == key))
