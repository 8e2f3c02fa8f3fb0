"""Sign-in, sign-out, the current user; users and clinics (admin)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, status
from pydantic import BaseModel

from b12plan.api.problems import problem_responses
from b12plan.api.security import make_optional_token
from b12plan.service.auth import SESSION_COOKIE, AuthService
from b12plan.service.schemas import (
    ClinicOut,
    IssuedToken,
    NewClinic,
    NewUser,
    Principal,
    UserOut,
)

Username = Annotated[str, Form(min_length=1, max_length=100)]
Password = Annotated[str, Form(min_length=1, max_length=256)]


class SessionOut(BaseModel):
    """A cookie session: the token itself travels only in the HttpOnly cookie."""

    user: UserOut
    expires_at: dt.datetime


def make_access_router(
    auth: AuthService, current_user: Callable[..., Principal], *, cookie_secure: bool
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    me = Depends(current_user)
    token_of_request = Depends(make_optional_token())

    @router.post(
        "/auth/token",
        response_model=IssuedToken,
        tags=["auth"],
        responses=problem_responses(401, 422),
    )
    def issue_token(username: Username, password: Password) -> IssuedToken:
        """Sign in (form fields ``username``, ``password``); use the token as ``Bearer``."""
        return auth.login(username, password, kind="bearer")

    @router.post(
        "/auth/session",
        response_model=SessionOut,
        tags=["auth"],
        responses=problem_responses(401, 422),
    )
    def open_session(username: Username, password: Password, response: Response) -> SessionOut:
        """Sign in for a browser: sets the HttpOnly ``b12plan_session`` cookie."""
        issued = auth.login(username, password, kind="cookie")
        response.set_cookie(
            SESSION_COOKIE,
            issued.access_token,
            max_age=int(auth.token_ttl.total_seconds()),
            httponly=True,
            secure=cookie_secure,
            samesite="lax",
            path="/",
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
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

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

    return router
