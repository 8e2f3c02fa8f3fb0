"""The web UI as one router: the templates, the static files, and each audience's pages.

The pages live by audience: ``web.session`` (sign in and out, change my password; everyone),
``web.clinic`` (clinicians and admins: worklist, patients, bookings, users), ``web.patient``
and ``web.reminders`` (patients: schedule, log, questions, reminder settings, export) and
``web.carer`` (a patient's carers, and the carer's pages). What they share (who is asking,
rendering, service errors as pages, CSV downloads) is ``web.context``; the use cases they call
are the service layer's. Every page works without JavaScript; htmx (``hx-boost``) only makes it
smoother.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2
import plotly
from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from b12plan.core.knowledge import Knowledge
from b12plan.reminders.service import ReminderService
from b12plan.service import SESSION_COOKIE, AuthService, Clock, RecordsService
from b12plan.service.carers import CarerService
from b12plan.web.answers import monitoring_label
from b12plan.web.carer import add_carer_routes
from b12plan.web.clinic import add_booking_routes, add_clinic_routes
from b12plan.web.context import Calendar, WebContext
from b12plan.web.patient import add_patient_routes
from b12plan.web.reminders import add_export_routes, add_reminder_routes
from b12plan.web.session import add_session_routes
from b12plan.web.text import human_date, num, weeks

_STATIC = resources.files(__package__).joinpath("static")


def _static_files() -> dict[str, Path]:
    """The files the static route may serve (an allow-list: nothing outside it is reachable):
    ours, the vendored htmx, and the ``plotly.min.js`` bundled in the ``plotly`` package."""
    root = Path(str(_STATIC))
    files = {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not plotly_js.is_file():
        raise RuntimeError(f"plotly.min.js is missing from the plotly package ({plotly_js})")
    files["vendor/plotly.min.js"] = plotly_js
    return files


_MEDIA = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


def make_router(
    *,
    records: RecordsService,
    auth: AuthService,
    knowledge: Knowledge,
    clock: Clock,
    calendar: Calendar,
    secure_cookies: bool = False,
    reminders: ReminderService | None = None,
    carers: CarerService | None = None,
    public_url: str | None = None,
    cookie_name: str = SESSION_COOKIE,
) -> APIRouter:
    """The web UI as one router, to mount at the site root of the FastAPI app.

    ``calendar`` makes the patient's .ics (the same function the REST API and CLI use);
    ``secure_cookies`` marks the session cookie Secure (set it when served over HTTPS);
    ``cookie_name`` is its name (``__Host-b12plan_session`` when Secure).
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("b12plan.web", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    # Helpers the templates (and the macros they import, which see no render context) use.
    env.globals.update(
        human_date=human_date,
        num=num,
        weeks=weeks,
        monitoring_label=monitoring_label,
        knowledge_version=knowledge.version,
    )
    web = WebContext(
        records, auth, knowledge, clock, calendar, secure_cookies, cookie_name, env, _static_files()
    )
    router = APIRouter(include_in_schema=False)

    # --- static files ------------------------------------------------------------------------

    @router.get("/static/{name:path}")
    def static(name: str) -> Response:
        path = web.static.get(name)
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(
            path,
            media_type=_MEDIA.get(path.suffix, "application/octet-stream"),
            headers={"Cache-Control": "public, max-age=3600"},
        )

    add_session_routes(router, web)
    add_clinic_routes(router, web)
    add_patient_routes(router, web)
    if reminders is not None:
        add_reminder_routes(router, web, reminders, public_url=public_url)
        add_booking_routes(router, web, reminders)
    if carers is not None:
        add_carer_routes(router, web, carers)
    add_export_routes(router, web)
    return router
