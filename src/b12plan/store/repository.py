"""Versioned writes, each with its audit entry, inside the caller's transaction.

A correction is a compare-and-set: the version the editor saw is marked entered-in-error only if
it is still the active one, and only then is the new version inserted. Two editors who both saw
version 3 cannot both succeed; the second gets ``VersionConflict`` and nothing of theirs is
written (no lost update).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from b12plan.store.chain import append as chain_append
from b12plan.store.models import ACTIVE, ENTERED_IN_ERROR, AuditEntry, RecordMixin

R = TypeVar("R", bound=RecordMixin)


class StoreError(Exception):
    """A write could not be done as asked; nothing of it was written."""


class RecordNotFound(StoreError):
    def __init__(self, kind: str, entity_id: str) -> None:
        super().__init__(f"no {kind} record {entity_id!r} for this patient")
        self.kind = kind
        self.entity_id = entity_id


class VersionConflict(StoreError):
    """The version the caller edited is no longer the active one."""

    def __init__(self, kind: str, entity_id: str, expected: int, latest: RecordMixin) -> None:
        state = (
            f"version {latest.version} is current"
            if latest.status == ACTIVE
            else f"it was entered in error at version {latest.version}"
        )
        super().__init__(f"{kind} {entity_id!r}: you edited version {expected}, but {state}")
        self.kind = kind
        self.entity_id = entity_id
        self.expected = expected
        self.current_version = latest.version
        self.current_status = latest.status


@dataclass(frozen=True)
class Author:
    """Who a write is attributed to in the audit log (a user, or a named system actor)."""

    name: str
    user_id: str | None = None


class Repository:
    """Writes for one unit of work: one author, one timestamp, one id factory."""

    def __init__(
        self, session: Session, *, author: Author, now: dt.datetime, new_id: Callable[[], str]
    ) -> None:
        self.session = session
        self.author = author
        self.now = now
        self.new_id = new_id

    def audit(
        self,
        action: str,
        entity_type: str,
        entity_id: str,
        *,
        patient_id: str | None = None,
        before_row_id: str | None = None,
        after_row_id: str | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(
            at=self.now,
            actor_user_id=self.author.user_id,
            actor=self.author.name,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            patient_id=patient_id,
            before_row_id=before_row_id,
            after_row_id=after_row_id,
            detail=detail,
        )
        chain_append(self.session, entry)
        self.session.add(entry)
        return entry

    def create(
        self,
        model: type[R],
        patient_id: str,
        values: Mapping[str, Any],
        *,
        entity_id: str | None = None,
    ) -> R:
        """Version 1 of a new record."""
        row = self._new_row(model, patient_id, entity_id or self.new_id(), 1, values)
        self.session.add(row)
        self.session.flush()
        self.audit("create", model.kind, row.id, patient_id=patient_id, after_row_id=row.row_id)
        return row

    def correct(
        self,
        model: type[R],
        patient_id: str,
        entity_id: str,
        expected_version: int,
        values: Mapping[str, Any],
    ) -> R:
        """A new version replacing ``expected_version``, which is marked entered-in-error."""
        new_row_id = self.new_id()
        old = self._mark(model, patient_id, entity_id, expected_version, new_row_id)
        row = self._new_row(model, patient_id, entity_id, expected_version + 1, values)
        row.row_id = new_row_id
        self.session.add(row)
        self.session.flush()
        self.audit(
            "correct",
            model.kind,
            entity_id,
            patient_id=patient_id,
            before_row_id=old,
            after_row_id=new_row_id,
        )
        return row

    def retract(
        self,
        model: type[R],
        patient_id: str,
        entity_id: str,
        expected_version: int,
        *,
        reason: str | None = None,
    ) -> R:
        """Mark the active version entered-in-error, with no successor: the record was wrong."""
        old = self._mark(model, patient_id, entity_id, expected_version, None)
        self.audit(
            "retract",
            model.kind,
            entity_id,
            patient_id=patient_id,
            before_row_id=old,
            detail=reason,
        )
        row = self.session.get(model, old, populate_existing=True)
        assert row is not None
        return row

    def _mark(
        self,
        model: type[R],
        patient_id: str,
        entity_id: str,
        expected_version: int,
        successor: str | None,
    ) -> str:
        """Compare-and-set: entered-in-error only if ``expected_version`` is still active."""
        table: Any = model
        marked = self.session.execute(
            update(table)
            .where(
                table.patient_id == patient_id,
                table.id == entity_id,
                table.version == expected_version,
                table.status == ACTIVE,
            )
            .values(status=ENTERED_IN_ERROR, superseded_by=successor)
            .returning(table.row_id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if marked is None:
            latest = latest_version(self.session, model, patient_id, entity_id)
            if latest is None:
                raise RecordNotFound(model.kind, entity_id)
            raise VersionConflict(model.kind, entity_id, expected_version, latest)
        return str(marked)

    def _new_row(
        self,
        model: type[R],
        patient_id: str,
        entity_id: str,
        version: int,
        values: Mapping[str, Any],
    ) -> R:
        row = model(**values)
        row.row_id = self.new_id()
        row.id = entity_id
        row.version = version
        row.status = ACTIVE
        row.patient_id = patient_id
        row.recorded_at = self.now
        row.recorded_by = self.author.user_id
        return row


def current_rows(session: Session, model: type[R], patient_ids: Collection[str]) -> list[R]:
    """The active version of every record of these patients, oldest recorded first."""
    table: Any = model
    if not patient_ids:
        return []
    rows = session.scalars(
        select(table)
        .where(table.patient_id.in_(list(patient_ids)), table.status == ACTIVE)
        .order_by(table.recorded_at, table.id)
    ).all()
    return list(rows)


def all_rows(session: Session, model: type[R], patient_id: str) -> list[R]:
    """Every version of every record of one patient, entered-in-error ones included."""
    table: Any = model
    rows = session.scalars(
        select(table)
        .where(table.patient_id == patient_id)
        .order_by(table.recorded_at, table.id, table.version)
    ).all()
    return list(rows)


def latest_version(session: Session, model: type[R], patient_id: str, entity_id: str) -> R | None:
    """The newest version of one record, whatever its status."""
    table: Any = model
    row: R | None = session.scalars(
        select(table)
        .where(table.patient_id == patient_id, table.id == entity_id)
        .order_by(table.version.desc())
        .limit(1)
    ).first()
    return row


def versions(session: Session, model: type[R], patient_id: str, entity_id: str) -> list[R]:
    """All versions of one record, oldest first."""
    table: Any = model
    return list(
        session.scalars(
            select(table)
            .where(table.patient_id == patient_id, table.id == entity_id)
            .order_by(table.version)
        ).all()
    )
