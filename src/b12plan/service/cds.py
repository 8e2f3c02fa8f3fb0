"""What the CDS Hooks services keep in the database: JWT ids seen, cards issued, feedback.

- ``first_use``: a CDS client's ``jti`` is remembered until its token expires, in the database so
  that every worker refuses a replay (expired ids are purged as new ones arrive).
- ``record_cards``: each card returned, by its ``uuid``, with the finding it shows and who it was
  returned to, so feedback can name the finding and come only from that caller.
- ``record_feedback``: accepted and overridden cards, with override reasons, as audit entries
  (the append-only audit log, one entry per feedback item).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from b12plan.service.clock import Clock
from b12plan.service.records import new_uuid
from b12plan.store import models
from b12plan.store.database import Database
from b12plan.store.repository import Author, Repository

CARD_RETENTION = dt.timedelta(days=30)
"""How long an issued card can receive feedback (CDS clients send it when the user acts)."""


@dataclass(frozen=True)
class IssuedCard:
    uuid: str
    indicator: str
    code: str | None
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackItem:
    """One feedback entry as the audit log keeps it; ``index`` is its place in the request."""

    index: int
    card: str
    outcome: str
    accepted: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedbackProblem:
    index: int
    loc: str
    msg: str


class CdsLedger:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        new_id: Callable[[], str] = new_uuid,
        card_retention: dt.timedelta = CARD_RETENTION,
    ) -> None:
        self.db = db
        self.clock = clock
        self.new_id = new_id
        self.card_retention = card_retention

    def first_use(self, issuer: str, jti: str, expires_at: dt.datetime) -> bool:
        """Remember ``jti`` until ``expires_at``; False when it is already remembered."""
        now = self.clock.now()
        digest = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        try:
            with self.db.writing() as session:
                session.execute(
                    delete(models.CdsTokenSeen).where(models.CdsTokenSeen.expires_at < now)
                )
                if session.get(models.CdsTokenSeen, digest) is not None:
                    return False
                session.add(
                    models.CdsTokenSeen(
                        digest=digest, issuer=issuer[:300], seen_at=now, expires_at=expires_at
                    )
                )
        except IntegrityError:  # another worker stored the same jti at the same moment
            return False
        return True

    def record_cards(
        self,
        *,
        service_id: str,
        hook_instance: str,
        patient_ref: str,
        caller: str,
        cards: Sequence[IssuedCard],
    ) -> None:
        now = self.clock.now()
        with self.db.writing() as session:
            session.execute(
                delete(models.CdsCardIssued).where(
                    models.CdsCardIssued.issued_at < now - self.card_retention
                )
            )
            for card in cards:
                if session.get(models.CdsCardIssued, card.uuid) is not None:
                    continue  # the first issue stands
                session.add(
                    models.CdsCardIssued(
                        uuid=card.uuid,
                        service_id=service_id,
                        hook_instance=hook_instance[:100],
                        patient_ref=patient_ref,
                        code=card.code,
                        indicator=card.indicator,
                        caller=caller[:300],
                        suggestions=json.dumps(list(card.suggestions)),
                        issued_at=now,
                    )
                )

    def record_feedback(
        self,
        *,
        service_id: str,
        caller: str,
        author_name: str,
        author_user_id: str | None,
        items: Sequence[FeedbackItem],
    ) -> list[FeedbackProblem]:
        """One audit entry per item, all or none: problems (a card this caller was not given,
        a suggestion not on the card) mean nothing is written."""
        problems: list[FeedbackProblem] = []
        with self.db.writing() as session:
            cards = {
                c.uuid: c
                for c in session.scalars(
                    select(models.CdsCardIssued).where(
                        models.CdsCardIssued.uuid.in_({i.card for i in items})
                    )
                )
            }
            for item in items:
                card = cards.get(item.card)
                if card is None or card.service_id != service_id or card.caller != caller[:300]:
                    problems.append(
                        FeedbackProblem(
                            item.index, "card", "no card with this uuid was returned to you"
                        )
                    )
                    continue
                offered = set(json.loads(card.suggestions))
                for n, suggestion in enumerate(item.accepted):
                    if suggestion not in offered:
                        problems.append(
                            FeedbackProblem(
                                item.index,
                                f"acceptedSuggestions[{n}].id",
                                "not a suggestion of this card",
                            )
                        )
            if problems:
                return problems
            repo = Repository(
                session,
                author=Author(name=author_name[:200], user_id=author_user_id),
                now=self.clock.now(),
                new_id=self.new_id,
            )
            for item in items:
                card = cards[item.card]
                detail = {
                    "service": service_id,
                    "hookInstance": card.hook_instance,
                    "patient": card.patient_ref,
                    "finding": card.code,
                    "indicator": card.indicator,
                    "outcome": item.outcome,
                    **item.detail,
                }
                repo.audit(
                    f"cds-{item.outcome}",
                    "cds-card",
                    card.uuid,
                    detail=json.dumps(detail, sort_keys=True, ensure_ascii=False),
                )
        return []
