"""Sign-in, sessions, users and clinics.

Passwords are hashed with Argon2 (pwdlib). A sign-in issues an opaque random token (256 bits);
only its SHA-256 digest is stored, so a copy of the database holds no usable token. The same
token works as a bearer token (``Authorization: Bearer ...``, for API clients) or as the value
of the session cookie (for the web UI); ``kind`` records which was asked for. Signing out
revokes the token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.orm import Session

from b12plan.service.clock import Clock
from b12plan.service.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    Unauthenticated,
    field_error,
)
from b12plan.service.records import new_uuid
from b12plan.service.schemas import (
    USERNAME_PATTERN,
    ClinicOut,
    IssuedToken,
    NewClinic,
    NewUser,
    Principal,
    UserOut,
)
from b12plan.store import models
from b12plan.store.database import Database
from b12plan.store.repository import Author, Repository

SESSION_COOKIE = "b12plan_session"
USERNAME = re.compile(USERNAME_PATTERN)
DEFAULT_TOKEN_TTL = dt.timedelta(hours=12)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AuthService:
    """Users, clinics and the tokens that stand for a signed-in user."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        password_hash: PasswordHash | None = None,
        token_ttl: dt.timedelta = DEFAULT_TOKEN_TTL,
        new_id: Callable[[], str] = new_uuid,
    ) -> None:
        self.db = db
        self.clock = clock
        self.password_hash = password_hash or PasswordHash.recommended()
        self.token_ttl = token_ttl
        self.new_id = new_id
        # Verified when the username is unknown, so a miss costs as much time as a hit.
        self._decoy = self.password_hash.hash(secrets.token_urlsafe(16))

    # --- sessions ------------------------------------------------------------------------------

    def login(
        self, username: str, password: str, *, kind: Literal["bearer", "cookie"] = "bearer"
    ) -> IssuedToken:
        """A new token for a correct username and password; ``Unauthenticated`` otherwise."""
        if not USERNAME.fullmatch(username):
            self.password_hash.verify(password, self._decoy)
            raise Unauthenticated("wrong username or password")
        with self.db.writing() as session:
            user = session.scalar(select(models.User).where(models.User.username == username))
            stored = user.password_hash if user is not None else self._decoy
            valid = self.password_hash.verify(password, stored)
            if user is None or not valid or not user.active:
                raise Unauthenticated("wrong username or password")
            now = self.clock.now()
            token = secrets.token_urlsafe(32)
            expires = now + self.token_ttl
            session.add(
                models.AuthToken(
                    token_hash=token_digest(token),
                    user_id=user.id,
                    kind=kind,
                    created_at=now,
                    expires_at=expires,
                )
            )
            self._repo(session, _principal(user)).audit("login", "user", user.id, detail=kind)
            return IssuedToken(access_token=token, expires_at=expires, user=_user_out(user))

    def logout(self, token: str) -> None:
        """Revoke the token (a second sign-out is harmless)."""
        with self.db.writing() as session:
            row = session.get(models.AuthToken, token_digest(token))
            if row is None or row.revoked_at is not None:
                return
            row.revoked_at = self.clock.now()
            user = session.get(models.User, row.user_id)
            if user is not None:
                self._repo(session, _principal(user)).audit("logout", "user", user.id)

    def current_user(self, token: str) -> Principal | None:
        """The user a live token stands for; None if unknown, expired, revoked or disabled."""
        with self.db.reading() as session:
            user = session.scalar(
                select(models.User)
                .join(models.AuthToken, models.AuthToken.user_id == models.User.id)
                .where(
                    models.AuthToken.token_hash == token_digest(token),
                    models.AuthToken.revoked_at.is_(None),
                    models.AuthToken.expires_at > self.clock.now(),
                    models.User.active.is_(True),
                )
            )
            if user is None:
                return None
            if user.role != "carer":
                return _principal(user)
            linked = session.scalars(
                select(models.CarerLink.patient_id)
                .where(
                    models.CarerLink.carer_user_id == user.id,
                    models.CarerLink.revoked_at.is_(None),
                )
                .order_by(models.CarerLink.patient_id)
            ).all()
            return replace(_principal(user), patient_ids=tuple(linked))

    def me(self, who: Principal) -> UserOut:
        with self.db.reading() as session:
            user = session.get(models.User, who.user_id) if who.user_id else None
            if user is None:
                raise Unauthenticated("not signed in as a user")
            return _user_out(user)

    # --- users and clinics --------------------------------------------------------------------

    def add_clinic(self, who: Principal, new: NewClinic) -> ClinicOut:
        _require_admin(who)
        with self.db.writing() as session:
            if session.get(models.Clinic, new.id) is not None:
                raise Conflict(f"clinic {new.id!r} already exists")
            clinic = models.Clinic(id=new.id, name=new.name, created_at=self.clock.now())
            session.add(clinic)
            self._repo(session, who).audit("create", "clinic", new.id, detail=new.name)
            return ClinicOut(id=clinic.id, name=clinic.name, created_at=clinic.created_at)

    def list_clinics(self, who: Principal) -> list[ClinicOut]:
        """All clinics for an admin; one's own clinic for everyone else."""
        query = select(models.Clinic).order_by(models.Clinic.id)
        if who.role != "admin":
            query = query.where(models.Clinic.id == who.clinic_id)
        with self.db.reading() as session:
            return [
                ClinicOut(id=c.id, name=c.name, created_at=c.created_at)
                for c in session.scalars(query)
            ]

    def add_user(self, who: Principal, new: NewUser) -> UserOut:
        """A new user; a patient user is tied to their record and that record's clinic."""
        _require_admin(who)
        with self.db.writing() as session:
            if session.scalar(select(models.User).where(models.User.username == new.username)):
                raise Conflict(f"user {new.username!r} already exists")
            clinic_id = new.clinic_id
            problems: list[FieldError] = []
            if new.role == "patient":
                patient = session.get(models.Patient, new.patient_id) if new.patient_id else None
                if patient is None:
                    problems.append(
                        field_error(
                            "patient_id",
                            "a patient user needs the id of an existing patient record",
                            "unknown_patient",
                        )
                    )
                else:
                    clinic_id = patient.clinic_id
            elif new.patient_id is not None:
                problems.append(
                    field_error("patient_id", "only patient users link to a record", "invalid")
                )
            if new.role == "clinician" and clinic_id is None:
                problems.append(field_error("clinic_id", "a clinician needs a clinic", "missing"))
            if clinic_id is not None and session.get(models.Clinic, clinic_id) is None:
                problems.append(
                    field_error("clinic_id", f"unknown clinic {clinic_id!r}", "unknown_clinic")
                )
            if problems:
                raise InvalidInput(problems)
            user = models.User(
                id=self.new_id(),
                username=new.username,
                display_name=new.display_name or new.username,
                password_hash=self.password_hash.hash(new.password),
                role=new.role,
                clinic_id=clinic_id,
                patient_id=new.patient_id if new.role == "patient" else None,
                active=True,
                created_at=self.clock.now(),
            )
            session.add(user)
            session.flush()
            self._repo(session, who).audit(
                "create", "user", user.id, patient_id=user.patient_id, detail=new.role
            )
            return _user_out(user)

    def list_users(self, who: Principal) -> list[UserOut]:
        _require_admin(who)
        with self.db.reading() as session:
            users = session.scalars(select(models.User).order_by(models.User.username))
            return [_user_out(u) for u in users]

    def _repo(self, session: Session, who: Principal) -> Repository:
        return Repository(
            session,
            author=Author(name=who.label, user_id=who.user_id),
            now=self.clock.now(),
            new_id=self.new_id,
        )


def _require_admin(who: Principal) -> None:
    if who.role != "admin":
        raise Forbidden("only admins manage users and clinics")


def _principal(user: models.User) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        clinic_id=user.clinic_id,
        patient_id=user.patient_id,
    )


def _user_out(user: models.User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        clinic_id=user.clinic_id,
        patient_id=user.patient_id,
        active=user.active,
        created_at=user.created_at,
    )
