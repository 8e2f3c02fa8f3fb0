"""Session pages, for everyone: sign in, sign out, and change my password.

Sign-in and password changes call the same ``AuthService`` use cases as the REST API
(``/api/v1/auth/session``, ``/api/v1/auth/password``): the same throttling, password rule and
audit entries; the session cookie's attributes come from the same ``session_cookie``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from b12plan.service import InvalidInput, ServiceError, Unauthenticated
from b12plan.service.auth import session_cookie
from b12plan.service.errors import TooManyAttempts, field_error
from b12plan.web.context import WebContext, failed_form, form_data, home
from b12plan.web.forms import Field, Form

ALL_ROLES = ("clinician", "admin", "patient", "carer")


def password_form() -> Form:
    """Current password and the new one twice (browsers' password managers fill these in)."""
    return Form(
        "password",
        "Change my password",
        "/account/password",
        "Change password",
        (
            Field(
                "current_password",
                "Current password",
                "password",
                required=True,
                attrs=(("autocomplete", "current-password"),),
            ),
            Field(
                "new_password",
                "New password",
                "password",
                required=True,
                hint="At least 12 characters, not a common password. A few unrelated words "
                "make a good one.",
                attrs=(("autocomplete", "new-password"),),
            ),
            Field(
                "new_password_again",
                "New password again",
                "password",
                required=True,
                attrs=(("autocomplete", "new-password"),),
            ),
        ),
    )


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: no open redirect through the sign-in form."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def add_session_routes(router: APIRouter, web: WebContext) -> None:
    """``/``, ``/login`` (GET, POST), ``/logout`` (POST), ``/account/password`` (GET, POST)."""
    auth = web.auth

    @router.get("/")
    @web.page
    def start(request: Request) -> Response:
        who = web.principal(request)
        if who is None:
            return RedirectResponse("/login", 303)
        return RedirectResponse(home(who.role), 303)

    @router.get("/login")
    @web.page
    def login_page(request: Request, next: str | None = None) -> Response:
        form = Form("login", "Sign in", "/login", "Sign in", ())
        return web.render(
            "login.html",
            None,
            title="Sign in",
            active="",
            form=form,
            next_url=safe_next(next) or "",
        )

    @router.post("/login")
    @web.page
    def login(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        username = form.get("username", "").strip()
        password = form.get("password", "")
        address = request.client.host if request.client else None
        try:
            issued = auth.login(username, password, kind="cookie", address=address)
        except TooManyAttempts as exc:
            return too_many_attempts(exc)
        except (Unauthenticated, ServiceError):
            failed = Form(
                "login",
                "Sign in",
                "/login",
                "Sign in",
                (Field("username", "Username", "text", required=True),),
                values={"username": username},
                errors={"username": "Wrong username or password."},
            )
            return web.render(
                "login.html",
                None,
                status=422,
                title="Sign in",
                active="",
                form=failed,
                next_url=safe_next(form.get("next")) or "",
            )
        target = safe_next(form.get("next")) or home(issued.user.role)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            **session_cookie(
                web.cookie_name, issued, now=web.clock.now(), secure=web.secure_cookies
            )
        )
        return response

    def too_many_attempts(exc: TooManyAttempts) -> Response:
        """The 429 page (with ``Retry-After``) for a throttled password, at sign-in or change."""
        page = web.error(
            None,
            429,
            exc.title,
            f"Too many wrong passwords. Please wait {exc.retry_after} seconds and try again.",
        )
        page.headers["Retry-After"] = str(exc.retry_after)
        return page

    @router.post("/logout")
    @web.page
    def logout(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        token = web.token(request)
        if token:
            auth.logout(token)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(web.cookie_name, path="/", secure=web.secure_cookies, httponly=True)
        return response

    def password_page(
        request: Request, *, failed: Form | None = None, saved: bool = False
    ) -> Response:
        who = web.require(request, ALL_ROLES)
        return web.render(
            "account/password.html",
            who,
            status=422 if failed is not None else 200,
            title="Change my password",
            active="password",
            form=failed or password_form(),
            saved=saved,
        )

    @router.get("/account/password")
    @web.page
    def password(request: Request, saved: str = "") -> Response:
        return password_page(request, saved=saved == "1")

    @router.post("/account/password")
    @web.page
    def change_password(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, ALL_ROLES)
        blank = password_form()
        current = form.get("current_password", "")
        new = form.get("new_password", "")
        problems = [
            field_error(f.name, "is required", "missing")
            for f in blank.fields
            if not form.get(f.name)
        ]
        if not problems and new != form.get("new_password_again"):
            problems.append(
                field_error("new_password_again", "does not match the new password", "mismatch")
            )
        if not problems:
            try:
                auth.change_password(who, current, new, keep_token=web.token(request))
            except InvalidInput as exc:
                problems = exc.errors
            except TooManyAttempts as exc:
                return too_many_attempts(exc)
        if problems:  # never echo a password back into the page
            return password_page(request, failed=failed_form(blank, {}, problems))
        return RedirectResponse("/account/password?saved=1", status_code=303)
