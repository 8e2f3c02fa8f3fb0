"""Sign-in, sign-out, the current user; users and clinics (admin)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi import Path as FastApiPath
from pydantic import BaseModel, ConfigDict, Field

from b12plan.api.problems import problem_responses
from b12plan.api.security import make_optional_token
from b12plan.service.auth import AuthService, session_cookie
from b12plan.service.schemas import (
    USERNAME_PATTERN,
    ClinicOut,
    IssuedToken,
    NewClinic,
    NewUser,
    Principal,
    UserOut,
)

Username = Annotated[str, Form(min_length=1, max_length=100)]
Password = Annotated[str, Form(min_length=1, max_length=256)]


UserName = Annotated[str, FastApiPath(pattern=USERNAME_PATTERN, description="The user's name.")]


class PasswordChange(BaseModel):
    """Your current password and the new one (12+ characters, not a common password)."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


def client_address(request: Request) -> str | None:
    """The peer address (behind a proxy, uvicorn's ``--proxy-headers`` makes it the client's)."""
    return request.client.host if request.client else None


class SessionOut(BaseModel):
    """A cookie session: the token itself travels only in the HttpOnly cookie."""

    user: UserOut
    expires_at: dt.datetime


def make_access_router(
    auth: AuthService,
    current_user: Callable[..., Principal],
    *,
    cookie_name: str,
    cookie_secure: bool,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    me = Depends(current_user)
    token_of_request = Depends(make_optional_token(cookie_name))

    @router.post(
        "/auth/token",
        response_model=IssuedToken,
        tags=["auth"],
        responses=problem_responses(401, 422, 429),
    )
    def issue_token(username: Username, password: Password, request: Request) -> IssuedToken:
        """Sign in (form fields ``username``, ``password``); use the token as ``Bearer``.

        Repeated failures for one account or one address are answered 429 with Retry-After."""
        return auth.login(username, password, kind="bearer", address=client_address(request))

    @router.post(
        "/auth/session",
        response_model=SessionOut,
        tags=["auth"],
        responses=problem_responses(401, 403, 422, 429),
    )
    def open_session(
        username: Username, password: Password, request: Request, response: Response
    ) -> SessionOut:
        """Sign in for a browser: sets the HttpOnly session cookie (same-origin requests only)."""
        issued = auth.login(username, password, kind="cookie", address=client_address(request))
        response.set_cookie(
            **session_cookie(cookie_name, issued, now=auth.clock.now(), secure=cookie_secure)
        )
        return SessionOut(user=issued.user, expires_at=issued.expires_at)

    @router.post(
        "/auth/logout",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["auth"],
        response_class=Response,
    )
    def logout(token: str | None = token_of_request) -> Response:
        """Revoke the token (bearer or cookie) and clear the cookie."""
        if token is not None:
            auth.logout(token)
        response = Response(status_code=status.HTTP_204_NO_CONTENT)
        response.delete_cookie(cookie_name, path="/", secure=cookie_secure, httponly=True)
        return response

    @router.post(
        "/auth/password",
        status_code=status.HTTP_204_NO_CONTENT,
        tags=["auth"],
        response_class=Response,
        responses=problem_responses(401, 422),
    )
    def change_password(
        change: PasswordChange, who: Principal = me, token: str | None = token_of_request
    ) -> Response:
        """Change your own password; your other sessions and tokens end (this one stays)."""
        auth.change_password(who, change.current_password, change.new_password, keep_token=token)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get("/auth/me", response_model=UserOut, tags=["auth"], responses=problem_responses(401))
    def whoami(who: Principal = me) -> UserOut:
        return auth.me(who)

    @router.get(
        "/clinics",
        response_model=list[ClinicOut],
        tags=["admin"],
        responses=problem_responses(401),
    )
    def list_clinics(who: Principal = me) -> list[ClinicOut]:
        """All clinics (admin); your own clinic (others)."""
        return auth.list_clinics(who)

    @router.post(
        "/clinics",
        response_model=ClinicOut,
        status_code=status.HTTP_201_CREATED,
        tags=["admin"],
        responses=problem_responses(401, 403, 409, 422),
    )
    def add_clinic(new: NewClinic, who: Principal = me) -> ClinicOut:
        return auth.add_clinic(who, new)

    @router.get(
        "/users",
        response_model=list[UserOut],
        tags=["admin"],
        responses=problem_responses(401, 403),
    )
    def list_users(who: Principal = me) -> list[UserOut]:
        return auth.list_users(who)

    @router.post(
        "/users",
        response_model=UserOut,
        status_code=status.HTTP_201_CREATED,
        tags=["admin"],
        responses=problem_responses(401, 403, 409, 422),
    )
    def add_user(new: NewUser, who: Principal = me) -> UserOut:
        return auth.add_user(who, new)

    @router.post(
        "/users/{username}/disable",
        response_model=UserOut,
        tags=["admin"],
        responses=problem_responses(401, 403, 404),
    )
    def disable_user(username: UserName, who: Principal = me) -> UserOut:
        """Disable a user: every session and token of theirs ends at once (admin)."""
        return auth.set_active(who, username, False)

    @router.post(
        "/users/{username}/enable",
        response_model=UserOut,
        tags=["admin"],
        responses=problem_responses(401, 403, 404),
    )
    def enable_user(username: UserName, who: Principal = me) -> UserOut:
        """Enable a disabled user again (they sign in afresh) (admin)."""
        return auth.set_active(who, username, True)

    return router
