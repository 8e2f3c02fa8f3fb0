"""Who is calling: a bearer token or the session cookie, whichever the client sends.

API clients send ``Authorization: Bearer <token>`` (from ``POST /api/v1/auth/token``); the web
UI's browser sends the ``b12plan_session`` cookie (from ``POST /api/v1/auth/session``). Both are
the same kind of opaque token, checked by ``AuthService.current_user``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from b12plan.service.auth import SECURE_SESSION_COOKIE, AuthService
from b12plan.service.errors import Unauthenticated
from b12plan.service.schemas import Principal

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from POST /api/v1/auth/token.",
)


def cookie_scheme(name: str = SECURE_SESSION_COOKIE) -> APIKeyCookie:
    """The session cookie (``__Host-b12plan_session``; ``b12plan_session`` in dev mode)."""
    return APIKeyCookie(
        name=name,
        auto_error=False,
        scheme_name="session-cookie",
        description="The session cookie set by POST /api/v1/auth/session (used by the web UI).",
    )


def request_token(
    credentials: HTTPAuthorizationCredentials | None,
    cookie: str | None,
) -> str | None:
    """The token the request carries: the bearer token if there is one, else the cookie."""
    if credentials is not None and credentials.credentials:
        return credentials.credentials
    return cookie or None


def make_current_user(
    auth: AuthService, cookie_name: str = SECURE_SESSION_COOKIE
) -> Callable[..., Principal]:
    """A FastAPI dependency giving the signed-in ``Principal`` (401 problem otherwise)."""
    cookies = cookie_scheme(cookie_name)

    def current_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        cookie: str | None = Security(cookies),  # a default: the scheme is made per app
    ) -> Principal:
        token = request_token(credentials, cookie)
        if token is None:
            raise Unauthenticated(
                "sign in first: send 'Authorization: Bearer <token>' or the session cookie"
            )
        who = auth.current_user(token)
        if who is None:
            raise Unauthenticated("the token is unknown, expired or revoked; sign in again")
        return who

    return current_user


def make_optional_token(cookie_name: str = SECURE_SESSION_COOKIE) -> Callable[..., str | None]:
    """A dependency giving the raw token of the request, if any (for sign-out)."""
    cookies = cookie_scheme(cookie_name)

    def token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        cookie: str | None = Security(cookies),
    ) -> str | None:
        return request_token(credentials, cookie)

    return token
