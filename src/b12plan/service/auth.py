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
from dataclasses import dataclass, replace
from typing import Any, Literal

from pwdlib import PasswordHash
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from b12plan.service.clock import Clock
from b12plan.service.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
    field_error,
)
from b12plan.service.hashing import HashingPool, shared_pool
from b12plan.service.passwords import password_problem
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
from b12plan.service.throttle import SignInLimits, SignInThrottle, account_key
from b12plan.store import models
from b12plan.store.database import Database
from b12plan.store.repository import Author, Repository

SESSION_COOKIE = "b12plan_session"
SECURE_SESSION_COOKIE = "__Host-b12plan_session"


def session_cookie_name(secure: bool) -> str:
    """``__Host-`` cookies are only accepted Secure, for the whole host, with no Domain: a
    neighbouring subdomain or a plain-HTTP page cannot set or overwrite them."""
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def session_cookie(
    name: str, issued: IssuedToken, *, now: dt.datetime, secure: bool
) -> dict[str, Any]:
    """The session cookie's attributes (``Response.set_cookie`` keywords), one rule for the
    API's and the web's sign-in: HttpOnly (no script reads it), SameSite=Lax, the whole site,
    Secure outside dev mode, and gone when the session's absolute limit is reached."""
    return {
        "key": name,
        "value": issued.access_token,
        "max_age": max(int((issued.expires_at - now).total_seconds()), 0),
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "path": "/",
    }


USERNAME = re.compile(USERNAME_PATTERN)
DEFAULT_TOKEN_TTL = dt.timedelta(hours=12)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionLimits:
    """A session ends ``idle`` after its last use, and ``absolute`` after sign-in, whichever
    comes first; its last use is written at most once per ``touch_every``."""

    absolute: dt.timedelta = DEFAULT_TOKEN_TTL
    idle: dt.timedelta = dt.timedelta(minutes=30)
    touch_every: dt.timedelta = dt.timedelta(minutes=1)


class AuthService:
    """Users, clinics and the tokens that stand for a signed-in user."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        password_hash: PasswordHash | None = None,
        token_ttl: dt.timedelta = DEFAULT_TOKEN_TTL,
        idle_timeout: dt.timedelta | None = None,
        sign_in_limits: SignInLimits | None = None,
        hashing: HashingPool | None = None,
        new_id: Callable[[], str] = new_uuid,
    ) -> None:
        self.db = db
        self.clock = clock
        self.password_hash = password_hash or PasswordHash.recommended()
        self.token_ttl = token_ttl
        self.sessions = SessionLimits(absolute=token_ttl, idle=idle_timeout or SessionLimits.idle)
        self.throttle = SignInThrottle(db, sign_in_limits or SignInLimits())
        # Argon2 is seconds of CPU under a flood: it runs on a few low-priority threads with a
        # short queue, so sign-ins wait for each other (or get 429) instead of for the writes.
        self.hashing = hashing or shared_pool()
        self.new_id = new_id
        # Verified when the username is unknown, so a miss costs as much time as a hit.
        self._decoy = self.password_hash.hash(secrets.token_urlsafe(16))

    # --- sessions ------------------------------------------------------------------------------

    def login(
        self,
        username: str,
        password: str,
        *,
        kind: Literal["bearer", "cookie"] = "bearer",
        address: str | None = None,
    ) -> IssuedToken:
        """A new token for a correct username and password.

        Order matters (issue 13): the throttle admits the try first (a blocked account or
        address is refused with ``TooManyAttempts`` before any password work, usually with no
        statement); the password is verified on a hashing thread with no transaction open, so
        Argon2's CPU time never holds the database's write lock; only then a short write records
        the outcome (the token, or the failure and its audit).
        """
        keys = self.throttle.keys(username, address)
        with self.throttle.attempt(keys, self.clock.now()):
            user = None
            if USERNAME.fullmatch(username):
                with self.db.reading() as session:
                    user = session.scalar(
                        select(models.User).where(models.User.username == username)
                    )
            stored = user.password_hash if user is not None else self._decoy
            valid = self.hashing.run(self.password_hash.verify, password, stored)
            now = self.clock.now()
            if user is None or not valid or not user.active:
                self._record_failure(username, user, valid, kind, address, keys, now)
                raise Unauthenticated("wrong username or password")
            with self.db.writing() as session:
                current = session.get(models.User, user.id)
                # Changed between the check and now (disabled, new password): sign in again.
                if current is None or not current.active or current.password_hash != stored:
                    raise Unauthenticated("wrong username or password")
                token = secrets.token_urlsafe(32)
                expires = now + self.token_ttl
                session.add(
                    models.AuthToken(
                        token_hash=token_digest(token),
                        user_id=current.id,
                        kind=kind,
                        created_at=now,
                        expires_at=expires,
                        last_seen_at=now,
                    )
                )
                self._repo(session, _principal(current)).audit(
                    "login", "user", current.id, detail=f"{kind}; address {address or '-'}"
                )
                self.throttle.clear(session, account_key(username))
                return IssuedToken(access_token=token, expires_at=expires, user=_user_out(current))

    def _record_failure(
        self,
        username: str,
        user: models.User | None,
        valid: bool,
        kind: str,
        address: str | None,
        keys: dict[str, int],
        now: dt.datetime,
    ) -> None:
        """The failure counts and a ``login-failed`` audit entry, in one short transaction."""
        reason = "unknown user" if user is None else "disabled" if valid else "wrong password"
        with self.db.writing() as session:
            blocks = {
                key: self.throttle.record_failure(session, key, free, now)
                for key, free in keys.items()
            }
            # The audit entry last: it locks the chain head that every audited write needs,
            # so it should be held for as little of the transaction as possible.
            who = _principal(user) if user else Principal.system(_actor_name(username))
            self._repo(session, who).audit(
                "login-failed",
                "user",
                user.id if user is not None else "-",
                detail=f"{kind}; {reason}; address {address or '-'}",
            )
        self.throttle.remember(blocks, now)

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
        """The user a live token stands for; None if unknown, expired (idle or absolute),
        revoked, or its user is disabled."""
        now = self.clock.now()
        digest = token_digest(token)
        with self.db.reading() as session:
            found = session.execute(
                select(models.User, models.AuthToken.last_seen_at, models.AuthToken.created_at)
                .join(models.AuthToken, models.AuthToken.user_id == models.User.id)
                .where(
                    models.AuthToken.token_hash == digest,
                    models.AuthToken.revoked_at.is_(None),
                    models.AuthToken.expires_at > now,
                    models.User.active.is_(True),
                )
            ).first()
        if found is None:
            return None
        user, last_seen, created = found
        seen = last_seen or created
        if now - seen > self.sessions.idle:
            return None
        if now - seen >= self.sessions.touch_every:
            with self.db.writing() as session:
                session.execute(
                    update(models.AuthToken)
                    .where(models.AuthToken.token_hash == digest)
                    .values(last_seen_at=now)
                )
        if user.role != "carer":
            return _principal(user)
        with self.db.reading() as session:
            linked = session.scalars(
                select(models.CarerLink.patient_id)
                .where(
                    models.CarerLink.carer_user_id == user.id,
                    models.CarerLink.revoked_at.is_(None),
                )
                .order_by(models.CarerLink.patient_id)
            ).all()
        return replace(_principal(user), patient_ids=tuple(linked))

    # --- accounts ------------------------------------------------------------------------------

    def change_password(
        self, who: Principal, current_password: str, new_password: str, *, keep_token: str | None
    ) -> None:
        """A user's own new password; their other sessions end (this one, if given, stays).

        A wrong current password counts against the account's sign-in throttle (and is audited
        as ``login-failed``), so a stolen session cannot be used to guess it without limit.
        """
        with self.db.reading() as session:
            user = session.get(models.User, who.user_id) if who.user_id else None
        if user is None:
            raise Unauthenticated("not signed in as a user")
        # Guessing the current password from a stolen session is a sign-in attempt like any
        # other: the account's throttle admits it, and a wrong one counts and is audited.
        keys = self.throttle.keys(user.username, None)
        with self.throttle.attempt(keys, self.clock.now()):
            correct = self.hashing.run(
                self.password_hash.verify, current_password, user.password_hash
            )
            if not correct:
                self._record_failure(
                    user.username, user, False, "password change", None, keys, self.clock.now()
                )
                raise InvalidInput(
                    [field_error("current_password", "is not your current password", "wrong")]
                )
        self._set_password(who, user.id, new_password, keep_token=keep_token)

    def set_password(self, who: Principal, username: str, new_password: str) -> UserOut:
        """An admin's (or the operator's) new password for a user: every session ends."""
        _require_admin(who)
        user_id = self._user_id(username)
        self._set_password(who, user_id, new_password, keep_token=None)
        return self._user(user_id)

    def get_user(self, who: Principal, username: str) -> UserOut:
        """One user by name (admins only)."""
        _require_admin(who)
        return self._user(self._user_id(username))

    def set_active(self, who: Principal, username: str, active: bool) -> UserOut:
        """Disable (every session ends at once) or enable a user; admins only."""
        _require_admin(who)
        user_id = self._user_id(username)
        if not active and who.user_id == user_id:
            raise Forbidden("an admin cannot disable their own account")
        with self.db.writing() as session:
            user = session.get(models.User, user_id)
            assert user is not None
            if user.active != active:
                # The audit entry goes first: the users trigger refuses an unaudited change.
                self._repo(session, who).audit(
                    "enable" if active else "disable", "user", user.id, detail=user.username
                )
                session.flush()
                user.active = active
                if not active:
                    self._revoke_all(session, user.id, keep=None)
            return _user_out(user)

    def _set_password(
        self, who: Principal, user_id: str, new_password: str, *, keep_token: str | None
    ) -> None:
        problem = password_problem(new_password)
        if problem is not None:
            raise InvalidInput([field_error("new_password", problem, "weak_password")])
        hashed = self.hashing.run(self.password_hash.hash, new_password)  # before the write
        with self.db.writing() as session:
            user = session.get(models.User, user_id)
            assert user is not None
            self._repo(session, who).audit("password", "user", user.id, detail=user.username)
            session.flush()
            user.password_hash = hashed
            keep = token_digest(keep_token) if keep_token else None
            self._revoke_all(session, user.id, keep=keep)
            self.throttle.clear(session, account_key(user.username))

    def _revoke_all(self, session: Session, user_id: str, *, keep: str | None) -> None:
        query = update(models.AuthToken).where(
            models.AuthToken.user_id == user_id, models.AuthToken.revoked_at.is_(None)
        )
        if keep is not None:
            query = query.where(models.AuthToken.token_hash != keep)
        session.execute(query.values(revoked_at=self.clock.now()))

    def _user_id(self, username: str) -> str:
        with self.db.reading() as session:
            user_id = session.scalar(select(models.User.id).where(models.User.username == username))
        if user_id is None:
            raise NotFound(f"no user {username!r}")
        return user_id

    def _user(self, user_id: str) -> UserOut:
        with self.db.reading() as session:
            user = session.get(models.User, user_id)
            assert user is not None
            return _user_out(user)

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

    def list_users(self, who: Principal, *, clinic: str | None = None) -> list[UserOut]:
        """Every user, by name (admins only); with ``clinic``, that clinic's users."""
        _require_admin(who)
        query = select(models.User).order_by(models.User.username)
        if clinic is not None:
            query = query.where(models.User.clinic_id == clinic)
        with self.db.reading() as session:
            return [_user_out(u) for u in session.scalars(query)]

    def _repo(self, session: Session, who: Principal) -> Repository:
        return Repository(
            session,
            author=Author(name=who.label, user_id=who.user_id),
            now=self.clock.now(),
            new_id=self.new_id,
        )


def _actor_name(username: str) -> str:
    """An unknown sign-in name as the audit's actor: printable, bounded."""
    shown = "".join(c if c.isprintable() else "?" for c in username[:60])
    return f"sign-in as {shown!r}"


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
