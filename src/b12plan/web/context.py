"""What every web page shares: who is asking, rendering, service errors as pages, form saving.

The audience modules (``clinic``, ``patient``, ``session``, ``reminders``) add their routes
through one ``WebContext``. Handlers are plain ``def`` so FastAPI runs the blocking service calls
in its thread pool; only reading the form is async (``form_data``). Cross-site posts never reach
a handler: ``b12plan.api.guard`` refuses them for every route before the body is read (ADR
0041: one CSRF rule for the whole site), so nothing here checks Origin again.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from b12plan.core.assessment import Assessment
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.service import (
    AuthService,
    Clock,
    Forbidden,
    InvalidInput,
    NotFound,
    Principal,
    RecordsService,
    ServiceError,
    StoredRecordInvalid,
    Unauthenticated,
)
from b12plan.service.schemas import PriorTreatmentIn, R
from b12plan.web.chart import TimelineRow, timeline_figure, timeline_rows
from b12plan.web.forms import Form, build_input, errors_by_field, typed_values
from b12plan.web.text import num

STAFF = ("clinician", "admin")
PATIENT = ("patient",)
CARER = ("carer",)
ADMIN = ("admin",)
PAGE_HEADERS = {
    "Cache-Control": "no-store",  # pages hold patient data: never kept by a shared cache
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
Calendar = Callable[[Assessment, str], bytes]
"""Makes the .ics of an assessment (``assessment_calendar(assessment, patient_id)``)."""

P = ParamSpec("P")


class Stop(Exception):
    """Leave a handler early with this response (a redirect to sign in, a 403 page)."""

    def __init__(self, response: Response) -> None:
        super().__init__("stop")
        self.response = response


def home(role: str) -> str:
    """Where each role lands after signing in."""
    return {"patient": "/me", "carer": "/carer"}.get(role, "/clinic")


async def form_data(request: Request) -> dict[str, str]:
    """The posted form as text (a FastAPI dependency)."""
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def own_patient(who: Principal) -> str:
    """The signed-in patient's own record id."""
    if who.patient_id is None:
        raise Forbidden("this account is not linked to a patient record")
    return who.patient_id


def failed_form(form: Form, values: Mapping[str, str], problems: Any) -> Form:
    """The form again, with what was typed and the service's problems next to their fields."""
    errors, general = errors_by_field(problems, form.fields)
    return replace(form, values=dict(values), errors=errors, general=general)


@dataclass
class WebContext:
    records: RecordsService
    auth: AuthService
    knowledge: Knowledge
    clock: Clock
    calendar: Calendar
    secure_cookies: bool
    cookie_name: str
    env: jinja2.Environment
    static: dict[str, Path]

    # --- rendering -------------------------------------------------------------------------------

    def render(
        self,
        name: str,
        who: Principal | None,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        nav: list[tuple[str, str, str]] = []
        if who is not None and who.role in STAFF:
            nav = [
                ("/clinic", "Worklist", "worklist"),
                ("/clinic/patients", "Patients", "patients"),
                ("/clinic/reminders", "Bookings", "bookings"),
            ]
            if who.role == "admin":
                nav.append(("/clinic/users", "Users", "users"))
        elif who is not None and who.role == "carer":
            nav = [("/carer", "People I care for", "carer")]
        elif who is not None:
            nav = [
                ("/me", "My schedule", "me"),
                ("/me/log", "Log", "log"),
                ("/me/questions", "Questions", "questions"),
                ("/me/settings", "Reminders", "settings"),
            ]
        html = self.env.get_template(name).render(user=who, nav=nav, **context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def error(self, who: Principal | None, status: int, heading: str, message: str) -> HTMLResponse:
        return self.render(
            "error.html",
            who,
            status=status,
            title=heading,
            heading=heading,
            message=message,
            tone="critical" if status >= 500 else "warning",
            home=home(who.role) if who is not None else "/login",
            active="",
        )

    # --- who is asking -------------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        token = self.token(request)
        return self.auth.current_user(token) if token else None

    def token(self, request: Request) -> str | None:
        """The session token the browser sent (its cookie), if any."""
        return request.cookies.get(self.cookie_name) or None

    def require(self, request: Request, roles: tuple[str, ...]) -> Principal:
        """The signed-in user if their role may open this page; else a redirect to sign in (no
        session) or a 403 page (another role). The service checks access again on every call."""
        who = self.principal(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise Stop(RedirectResponse("/login?" + urlencode({"next": target}), 303))
        if who.role not in roles:
            place = {STAFF: "clinic staff", CARER: "carers", ADMIN: "admins"}.get(roles, "patients")
            raise Stop(
                self.error(
                    who,
                    403,
                    "Not allowed",
                    f"This page is for {place}. You are signed in as a {who.role}.",
                )
            )
        return who

    def page(self, fn: Callable[P, Response]) -> Callable[P, Response]:
        """Turn the service's errors into pages (404, 403, sign-in) instead of tracebacks."""

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            request = kwargs.get("request")
            assert isinstance(request, Request)
            try:
                return fn(*args, **kwargs)
            except Stop as stop:
                return stop.response
            except NotFound as exc:
                return self.error(self.principal(request), 404, "Not found", exc.detail)
            except Forbidden as exc:
                return self.error(self.principal(request), 403, "Not allowed", exc.detail)
            except Unauthenticated:
                return RedirectResponse("/login", 303)
            except StoredRecordInvalid as exc:
                detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in exc.errors)
                return self.error(
                    self.principal(request),
                    500,
                    "This record needs attention",
                    f"{exc.detail}. {detail}",
                )
            except ServiceError as exc:  # e.g. a record that cannot be assessed on this date
                status = 422 if isinstance(exc, InvalidInput) else 400
                return self.error(self.principal(request), status, exc.title, exc.detail)

        return wrapper

    # --- shared data ------------------------------------------------------------------------

    def chart(self, case: Case, assessment: Assessment) -> tuple[str, list[TimelineRow]]:
        figure = timeline_figure(case, assessment, self.knowledge)
        text = json.dumps(figure, separators=(",", ":"), ensure_ascii=False)
        # Inside <script>: "</" would end the element; "<\/" means the same to JSON.
        return text.replace("</", "<\\/"), timeline_rows(case, assessment, self.knowledge)

    def dose_defaults(self, case: Case, assessment: Assessment) -> dict[str, str]:
        """Product, dose, unit and route as prescribed (or as the regimen says)."""
        rx = case.prescription
        if rx is not None:
            return {"product": rx.product, "dose": num(rx.dose), "unit": rx.unit, "route": rx.route}
        r = assessment.regimen
        if r is not None:
            return {"product": r.product, "dose": num(r.dose), "unit": r.unit, "route": r.route}
        return {}

    # --- saving a form ------------------------------------------------------------------------

    def save_record(
        self,
        who: Principal,
        patient_id: str,
        blank: Form,
        model: type[R],
        form: Mapping[str, str],
        redisplay: Callable[[Form], Response],
    ) -> R | Response:
        """Store the record a submitted form describes, or show the form again with its
        problems (field types, the record's own rules, then the service's checks against the
        whole case)."""
        values, errors = typed_values(blank.fields, form)
        if errors:
            return redisplay(replace(blank, values=dict(form), errors=errors))
        data, problems = build_input(model, values)
        if data is None:
            return redisplay(failed_form(blank, form, problems))
        try:
            if isinstance(data, PriorTreatmentIn):
                self.records.save_prior_treatment(who, patient_id, data)
            else:
                self.records.add_record(who, patient_id, data)
        except InvalidInput as exc:
            return redisplay(failed_form(blank, form, exc.errors))
        return data


def csv_download(filename: str, header: list[str], rows: list[list[Any]]) -> Response:
    """A CSV download; cells that a spreadsheet would run as a formula are quoted as text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _cell(value: Any) -> str:
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text  # CSV injection: never a formula in someone's spreadsheet
    return text
