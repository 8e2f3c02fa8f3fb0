"""Carers: who may see a patient's schedule, get their reminders and log the doses they give.

A carer is a user with the ``carer`` role and no record of their own. They reach a patient only
through an active link, made either

- by the patient: an invitation code (shown once, kept only as a hash, valid 7 days) that the
  signed-in carer redeems (the patient's consent is the invitation itself), or
- by the clinic: a clinician of the patient's clinic links a carer and records how the patient
  consented (``consent_note``, required).

Links are ended (``revoked_at``), never deleted; every change is audited against the patient.
Access follows from the links (``records.may_see``); a carer reads the schedule and the doses
and writes only doses, as ``given_by: carer`` (ADR 0054).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from b12plan.service.clock import Clock
from b12plan.service.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from b12plan.service.records import PATIENT_ID, may_see
from b12plan.service.schemas import Principal
from b12plan.store import models
from b12plan.store.database import Database
from b12plan.store.repository import Author, Repository

INVITATION_DAYS = 7


@dataclass(frozen=True)
class CarerOut:
    carer_user_id: str
    username: str
    display_name: str
    patient_id: str
    consent: str  # clinic | patient
    consent_note: str
    email: str | None
    created_at: dt.datetime


class CarerService:
    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def link_by_clinic(
        self,
        who: Principal,
        carer_username: str,
        patient_id: str,
        *,
        consent_note: str,
        email: str | None = None,
    ) -> CarerOut:
        """A clinician links a carer to their clinic's patient, recording the patient's consent."""
        if who.role not in ("clinician", "admin"):
            raise Forbidden("only the clinic (or an admin) links carers this way")
        if not consent_note.strip():
            raise InvalidInput(
                [field_error("consent_note", "say how the patient consented", "missing")]
            )
        with self.db.writing() as session:
            self._patient(session, who, patient_id)
            carer = session.scalar(
                select(models.User).where(
                    models.User.username == carer_username, models.User.role == "carer"
                )
            )
            if carer is None:
                raise InvalidInput(
                    [field_error("carer", f"no carer account {carer_username!r}", "unknown")]
                )
            link = self._link(session, who, carer, patient_id, "clinic", consent_note, email)
            return _out(link, carer)

    def invite(self, who: Principal) -> str:
        """A patient's invitation code for a carer (shown once; only its hash is kept)."""
        if who.role != "patient" or who.patient_id is None:
            raise Forbidden("patients invite their own carers")
        code = secrets.token_urlsafe(12)
        now = self.clock.now()
        with self.db.writing() as session:
            session.add(
                models.CarerInvitation(
                    code_hash=_digest(code),
                    patient_id=who.patient_id,
                    created_by=who.user_id,
                    created_at=now,
                    expires_at=now + dt.timedelta(days=INVITATION_DAYS),
                )
            )
            self._repo(session, who).audit(
                "invite",
                "carer",
                who.patient_id,
                patient_id=who.patient_id,
                detail=f"invitation valid for {INVITATION_DAYS} days",
            )
        return code

    def accept(self, who: Principal, code: str, *, email: str | None = None) -> CarerOut:
        """A signed-in carer redeems a patient's invitation (the patient's consent)."""
        if who.role != "carer" or who.user_id is None:
            raise Forbidden("only carer accounts accept invitations")
        now = self.clock.now()
        with self.db.writing() as session:
            invitation = session.get(models.CarerInvitation, _digest(code.strip()))
            if invitation is None or invitation.used_at is not None or invitation.expires_at < now:
                raise InvalidInput(
                    [field_error("code", "this invitation code is not valid (or was used)", "code")]
                )
            invitation.used_at = now
            invitation.used_by = who.user_id
            carer = session.get(models.User, who.user_id)
            assert carer is not None
            link = self._link(
                session,
                who,
                carer,
                invitation.patient_id,
                "patient",
                "invitation made by the patient and accepted by the carer",
                email,
            )
            return _out(link, carer)

    def unlink(self, who: Principal, carer_user_id: str, patient_id: str) -> None:
        """End a link: the patient, their clinic, or the carer themself."""
        now = self.clock.now()
        with self.db.writing() as session:
            if who.role == "carer":
                if who.user_id != carer_user_id:
                    raise NotFound("no such carer link")
            else:
                self._patient(session, who, patient_id)
            link = session.get(models.CarerLink, (carer_user_id, patient_id))
            if link is None or link.revoked_at is not None:
                raise NotFound("no such carer link")
            link.revoked_at = now
            self._repo(session, who).audit(
                "unlink", "carer", carer_user_id, patient_id=patient_id, detail="link ended"
            )

    def carers_of(self, who: Principal, patient_id: str) -> list[CarerOut]:
        with self.db.reading() as session:
            self._patient(session, who, patient_id)
            rows = session.execute(
                select(models.CarerLink, models.User)
                .join(models.User, models.User.id == models.CarerLink.carer_user_id)
                .where(
                    models.CarerLink.patient_id == patient_id,
                    models.CarerLink.revoked_at.is_(None),
                )
                .order_by(models.User.display_name)
            ).all()
            return [_out(link, user) for link, user in rows]

    def emails(self) -> dict[str, list[tuple[str, str]]]:
        """Active carers with an address, by patient: (carer user id, email)."""
        with self.db.reading() as session:
            rows = session.execute(
                select(
                    models.CarerLink.patient_id,
                    models.CarerLink.carer_user_id,
                    models.CarerLink.email,
                )
                .join(models.User, models.User.id == models.CarerLink.carer_user_id)
                .where(
                    models.CarerLink.revoked_at.is_(None),
                    models.CarerLink.email.is_not(None),
                    models.User.active.is_(True),
                )
            ).all()
        out: dict[str, list[tuple[str, str]]] = {}
        for pid, uid, email in rows:
            if email:
                out.setdefault(pid, []).append((uid, email))
        return out

    # --- internals ----------------------------------------------------------------------------

    def _patient(self, session: Session, who: Principal, patient_id: str) -> models.Patient:
        patient = (
            session.get(models.Patient, patient_id) if PATIENT_ID.fullmatch(patient_id) else None
        )
        if patient is None or not may_see(who, patient) or who.role == "carer":
            raise NotFound(f"no patient {patient_id[:64]!r}")
        return patient

    def _link(
        self,
        session: Session,
        who: Principal,
        carer: models.User,
        patient_id: str,
        consent: str,
        note: str,
        email: str | None,
    ) -> models.CarerLink:
        now = self.clock.now()
        link = session.get(models.CarerLink, (carer.id, patient_id))
        if link is not None and link.revoked_at is None:
            raise Conflict(f"{carer.username} is already a carer of this patient")
        if link is None:
            link = models.CarerLink(carer_user_id=carer.id, patient_id=patient_id)
            session.add(link)
        link.consent = consent
        link.consent_note = note.strip()[:2000]
        link.email = email
        link.linked_by = who.user_id
        link.created_at = now
        link.revoked_at = None
        self._repo(session, who).audit(
            "link",
            "carer",
            carer.id,
            patient_id=patient_id,
            detail=f"consent: {consent} ({link.consent_note[:200]})",
        )
        return link

    def _repo(self, session: Session, who: Principal) -> Repository:
        return Repository(
            session,
            author=Author(name=who.label, user_id=who.user_id),
            now=self.clock.now(),
            new_id=lambda: "",
        )


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _out(link: models.CarerLink, user: models.User) -> CarerOut:
    return CarerOut(
        carer_user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        patient_id=link.patient_id,
        consent=link.consent,
        consent_note=link.consent_note,
        email=link.email,
        created_at=link.created_at,
    )
