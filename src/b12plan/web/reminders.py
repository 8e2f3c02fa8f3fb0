"""The patient's reminder settings, their calendar feed, and their log for the doctor (export).

Patient pages like ``web.patient``'s (the clinic's booking lists are in ``web.clinic``, the
carers' pages in ``web.carer``). The feed (``/calendar/{secret}.ics``) needs no session: the
secret in the URL is the credential (256 random bits, stored only as a hash, revocable).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from b12plan.reminders.service import CHANNELS, Preferences, ReminderService
from b12plan.reminders.text import LANGUAGES
from b12plan.service import InvalidInput, Principal
from b12plan.service.schemas import KINDS
from b12plan.web.context import PATIENT, WebContext, csv_download, form_data, own_patient
from b12plan.web.text import num

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
    router: APIRouter, web: WebContext, reminders: ReminderService, *, public_url: str | None
) -> None:
    """``/me/settings`` (GET, POST), ``/me/settings/calendar`` (POST), ``/calendar/{s}.ics``."""

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
        pid = own_patient(who)
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
        who = web.require(request, PATIENT)
        return settings_page(request, who, saved=saved == "1")

    @router.post("/me/settings")
    @web.page
    def me_settings_save(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, PATIENT)
        data = {k: form.get(k, "") for k in FIELDS}
        try:
            reminders.set_preferences(who, own_patient(who), data)
        except InvalidInput as exc:
            errors = {e["loc"]: e["msg"] for e in exc.errors}
            return settings_page(request, who, values=data, errors=errors, status=422)
        return RedirectResponse("/me/settings?saved=1", status_code=303)

    @router.post("/me/settings/calendar")
    @web.page
    def me_calendar_feed(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, PATIENT)
        if form.get("action") == "revoke":
            reminders.revoke_calendar_secret(who, own_patient(who))
            return RedirectResponse("/me/settings?saved=1#calendar", status_code=303)
        secret = reminders.rotate_calendar_secret(who, own_patient(who))
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


@dataclass(frozen=True)
class LogLine:
    """One line of the patient's log for their doctor (doses, symptoms, side effects)."""

    record: str  # dose | symptom | side effect
    date: date
    what: str
    detail: str
    given_by: str
    site: str
    note: str


EXPORT_HEADER = ["record", "date", "what", "detail", "given_by", "site", "note"]


def patient_log(web: WebContext, who: Principal, patient_id: str) -> list[LogLine]:
    """The patient's current doses, symptom reports and side effects, by date."""
    k = web.knowledge
    labels = {e.code: e.label for e in (*k.symptoms, *k.adverse_events)}
    lines: list[LogLine] = []
    for dose in web.records.list_records(who, patient_id, KINDS["administrations"]):
        d = dose.data
        lines.append(
            LogLine(
                "dose",
                d.date,
                d.product,
                f"{num(d.dose)} {d.unit} {d.route}",
                d.given_by or "",
                d.site or "",
                d.note or "",
            )
        )
    for report in web.records.list_records(who, patient_id, KINDS["symptoms"]):
        r = report.data
        lines.append(
            LogLine("symptom", r.date, labels.get(r.code, r.code), r.status, "", "", r.note or "")
        )
    for event in web.records.list_records(who, patient_id, KINDS["adverse_events"]):
        e = event.data
        lines.append(
            LogLine("side effect", e.date, labels.get(e.code, e.code), "", "", "", e.note or "")
        )
    return sorted(lines, key=lambda line: (line.date, line.record, line.what))


def add_export_routes(router: APIRouter, web: WebContext) -> None:
    """``/me/export.csv`` and ``/me/export`` (a printable page): the patient's log."""

    @router.get("/me/export.csv")
    @web.page
    def me_exportcsv_download(request: Request) -> Response:
        who = web.require(request, PATIENT)
        lines = patient_log(web, who, own_patient(who))
        rows = [[x.record, x.date, x.what, x.detail, x.given_by, x.site, x.note] for x in lines]
        return csv_download(f"b12-log-{web.clock.today().isoformat()}.csv", EXPORT_HEADER, rows)

    @router.get("/me/export")
    @web.page
    def me_export(request: Request) -> Response:
        who = web.require(request, PATIENT)
        pid = own_patient(who)
        patient = web.records.get_patient(who, pid)
        return web.render(
            "me/export.html",
            who,
            title="My log for my doctor",
            active="log",
            patient=patient,
            today=web.clock.today(),
            lines=patient_log(web, who, pid),
        )
