"""Reminder pages: the patient's reminder settings, the calendar feed, and the log export.

Added to the web router by ``routes.make_router`` (one call), so the pages share its sign-in,
rendering and error handling. The feed (``/calendar/{secret}.ics``) needs no session: the
secret in the URL is the credential (256 random bits, stored only as a hash, revocable).
"""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from b12plan.reminders.service import CHANNELS, Preferences, ReminderService
from b12plan.reminders.text import LANGUAGES
from b12plan.service import InvalidInput, Principal

if TYPE_CHECKING:
    from b12plan.web.routes import _Web

CHANNEL_LABELS = {
    "email": "Email",
    "calendar": "Calendar subscription",
    "both": "Email and calendar",
    "none": "No reminders",
}
LANGUAGE_LABELS = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "cy": "Cymraeg",
}
FIELDS = ("channel", "email", "lead_days", "quiet_start", "quiet_end", "time_zone", "language")
_ZONES = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc"))


def add_reminder_routes(
    router: APIRouter,
    web: _Web,
    reminders: ReminderService,
    form_data: Any,
    *,
    public_url: str | None,
) -> None:
    """``/me/settings`` (GET, POST), ``/me/settings/calendar`` (POST), ``/calendar/{s}.ics``."""

    def own(who: Principal) -> str:
        assert who.patient_id is not None
        return who.patient_id

    def settings_page(
        request: Request,
        who: Principal,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        saved: bool = False,
        feed_url: str | None = None,
        status: int = 200,
    ) -> Response:
        pid = own(who)
        prefs = reminders.preferences(who, pid)
        shown = values if values is not None else _values(prefs)
        base = public_url or str(request.base_url).rstrip("/")
        return web.render(
            "me/settings.html",
            who,
            status=status,
            title="Reminders",
            active="settings",
            values=shown,
            errors=errors or {},
            saved=saved,
            prefs=prefs,
            feed_url=feed_url and f"{base}/calendar/{feed_url}.ics",
            webcal_url=feed_url and _webcal(f"{base}/calendar/{feed_url}.ics"),
            channels=[(c, CHANNEL_LABELS[c]) for c in CHANNELS],
            languages=[(code, LANGUAGE_LABELS.get(code, code)) for code in LANGUAGES],
            zones=_ZONES,
            lead_min=reminders.rules.patient_lead_min,
            lead_max=reminders.rules.patient_lead_max,
        )

    @router.get("/me/settings")
    @web.page
    def me_settings(request: Request, saved: str = "") -> Response:
        who = web.require(request, ("patient",))
        return settings_page(request, who, saved=saved == "1")

    @router.post("/me/settings")
    @web.page
    def me_settings_save(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, ("patient",))
        data = {k: form.get(k, "") for k in FIELDS}
        try:
            reminders.set_preferences(who, own(who), data)
        except InvalidInput as exc:
            errors = {e["loc"]: e["msg"] for e in exc.errors}
            return settings_page(request, who, values=data, errors=errors, status=422)
        return RedirectResponse("/me/settings?saved=1", status_code=303)

    @router.post("/me/settings/calendar")
    @web.page
    def me_calendar_feed(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, ("patient",))
        if form.get("action") == "revoke":
            reminders.revoke_calendar_secret(who, own(who))
            return RedirectResponse("/me/settings?saved=1#calendar", status_code=303)
        secret = reminders.rotate_calendar_secret(who, own(who))
        # Shown once, on this response only (never in a URL we redirect to, never stored).
        return settings_page(request, who, feed_url=secret)

    @router.get("/calendar/{secret}.ics")
    def calendar_feed(secret: str) -> Response:
        data = reminders.feed(secret)
        if data is None:
            return Response("no such calendar", status_code=404, media_type="text/plain")
        return Response(
            data,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )


def _values(prefs: Preferences) -> dict[str, str]:
    return {
        "channel": prefs.channel,
        "email": prefs.email or "",
        "lead_days": "" if prefs.lead_days is None else str(prefs.lead_days),
        "quiet_start": prefs.quiet_start or "",
        "quiet_end": prefs.quiet_end or "",
        "time_zone": prefs.time_zone,
        "language": prefs.language,
    }


def _webcal(url: str) -> str:
    return "webcal://" + url.split("://", 1)[1]
