"""Reminder and carer pages: the patient's reminder settings and carers, the calendar feed,
and the carer's pages (the schedules of the people they care for, and a dose log).

Added to the web router by ``routes.make_router``, so the pages share ``web.context``'s
sign-in, rendering and error handling. The feed (``/calendar/{secret}.ics``) needs no session: the
secret in the URL is the credential (256 random bits, stored only as a hash, revocable).
"""

from __future__ import annotations

import csv
import io
import zoneinfo
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from b12plan.reminders.service import CHANNELS, Preferences, ReminderService
from b12plan.reminders.text import LANGUAGES
from b12plan.service import InvalidInput, Principal, ServiceError
from b12plan.service.carers import CarerService
from b12plan.service.schemas import KINDS, AdministrationIn
from b12plan.web.context import CARER, STAFF, WebContext
from b12plan.web.forms import build_input
from b12plan.web.page_models import upcoming, window_view
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
    router: APIRouter,
    web: WebContext,
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

    def lists(who: Principal, days: str) -> tuple[int, Any, Any, Any]:
        n = int(days) if days.isdigit() and 1 <= int(days) <= 366 else 14
        today = web.clock.today()
        return n, today, reminders.booking_list(who, today, n), reminders.did_not_attend(who, today)

    @router.get("/clinic/reminders")
    @web.page
    def clinic_reminders(request: Request, days: str = "14") -> Response:
        who = web.require(request, STAFF)
        n, today, booking, no_shows = lists(who, days)
        return web.render(
            "clinic/reminders.html",
            who,
            title="Bookings and reminders",
            active="bookings",
            days=n,
            today=today,
            booking=booking,
            no_shows=no_shows,
        )

    @router.get("/clinic/reminders/booking.csv")
    @web.page
    def booking_csv(request: Request, days: str = "14") -> Response:
        who = web.require(request, STAFF)
        n, today, booking, _ = lists(who, days)
        rows = [
            [r.patient_id, r.display_name, r.what, r.due, r.earliest or "", r.overdue_after or ""]
            for r in booking
        ]
        header = ["patient_id", "name", "what", "due", "earliest", "overdue_after"]
        return _csv(f"booking-{today.isoformat()}-{n}d.csv", header, rows)

    @router.get("/clinic/reminders/did-not-attend.csv")
    @web.page
    def no_show_csv(request: Request) -> Response:
        who = web.require(request, STAFF)
        _, today, _, no_shows = lists(who, "14")
        rows = [
            [r.patient_id, r.display_name, r.due, r.reminded_on, r.reminder, r.days_late]
            for r in no_shows
        ]
        header = ["patient_id", "name", "due", "reminded_on", "reminder", "days_late"]
        return _csv(f"did-not-attend-{today.isoformat()}.csv", header, rows)

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


def add_carer_routes(
    router: APIRouter, web: WebContext, carers: CarerService, form_data: Any
) -> None:
    """The patient's carers (on their settings page) and the carer's own pages."""

    def carers_section(request: Request, who: Principal, code: str | None = None) -> Response:
        assert who.patient_id is not None
        return web.render(
            "me/carers.html",
            who,
            title="My carers",
            active="settings",
            carers=carers.carers_of(who, who.patient_id),
            code=code,
        )

    @router.get("/me/carers")
    @web.page
    def me_carers(request: Request) -> Response:
        return carers_section(request, web.require(request, ("patient",)))

    @router.post("/me/carers")
    @web.page
    def me_carers_change(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, ("patient",))
        assert who.patient_id is not None
        if form.get("action") == "remove":
            carers.unlink(who, form.get("carer", ""), who.patient_id)
            return RedirectResponse("/me/carers", status_code=303)
        return carers_section(request, who, code=carers.invite(who))  # shown once

    def carer_home(request: Request, who: Principal, **extra: Any) -> Response:
        people = web.records.list_patients(who, limit=200).items
        rows = []
        today = web.clock.today()
        for person in people:
            assessment = web.records.assess_patient(who, person.id, as_of=today)
            rows.append((person, window_view(assessment.next_dose, today)))
        return web.render(
            "carer/home.html",
            who,
            title="People I care for",
            active="carer",
            rows=rows,
            values=extra.pop("values", {}),
            errors=extra.pop("errors", {}),
            **extra,
        )

    @router.get("/carer")
    @web.page
    def carer(request: Request) -> Response:
        return carer_home(request, web.require(request, CARER))

    @router.post("/carer/accept")
    @web.page
    def carer_accept(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, CARER)
        email = form.get("email", "").strip() or None
        try:
            carers.accept(who, form.get("code", ""), email=email)
        except InvalidInput as exc:
            errors = {e["loc"]: e["msg"] for e in exc.errors}
            return carer_home(request, who, values=form, errors=errors, status=422)
        return RedirectResponse("/carer", status_code=303)

    def person_page(
        request: Request,
        who: Principal,
        patient_id: str,
        *,
        errors: dict[str, str] | None = None,
        saved: bool = False,
        status: int = 200,
    ) -> Response:
        today = web.clock.today()
        person = web.records.get_patient(who, patient_id)
        assessment = web.records.assess_patient(who, patient_id, as_of=today)
        return web.render(
            "carer/patient.html",
            who,
            status=status,
            title=person.display_name,
            active="carer",
            person=person,
            today=today,
            window=window_view(assessment.next_dose, today),
            upcoming=upcoming(assessment),
            regimen=assessment.regimen,
            errors=errors or {},
            saved=saved,
        )

    @router.get("/carer/patients/{patient_id}")
    @web.page
    def carer_patient(request: Request, patient_id: str, saved: str = "") -> Response:
        who = web.require(request, CARER)
        return person_page(request, who, patient_id, saved=saved == "1")

    @router.post("/carer/patients/{patient_id}/dose")
    @web.page
    def carer_dose(
        request: Request, patient_id: str, form: dict[str, str] = Depends(form_data)
    ) -> Response:
        who = web.require(request, CARER)
        assessment = web.records.assess_patient(who, patient_id, as_of=web.clock.today())
        regimen = assessment.regimen
        if regimen is None:
            return person_page(
                request,
                who,
                patient_id,
                status=422,
                errors={"date": "There is no injection plan: ask the clinic before logging."},
            )
        data = {
            "date": form.get("date", ""),
            "product": regimen.product,
            "dose": regimen.dose,
            "unit": regimen.unit,
            "route": regimen.route,
            "given_by": "carer",
            "site": form.get("site", "").strip() or None,
        }
        parsed, problems = build_input(AdministrationIn, data)
        errors = {e["loc"]: e["msg"] for e in problems}
        if parsed is not None:
            try:
                web.records.add_record(who, patient_id, parsed)
            except InvalidInput as exc:
                errors = {e["loc"] or "date": e["msg"] for e in exc.errors}
            except ServiceError:
                raise
        if errors:
            return person_page(request, who, patient_id, errors=errors, status=422)
        return RedirectResponse(f"/carer/patients/{patient_id}?saved=1", status_code=303)


def _csv(filename: str, header: list[str], rows: list[list[Any]]) -> Response:
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
    def me_export_csv(request: Request) -> Response:
        who = web.require(request, ("patient",))
        assert who.patient_id is not None
        lines = patient_log(web, who, who.patient_id)
        rows = [[x.record, x.date, x.what, x.detail, x.given_by, x.site, x.note] for x in lines]
        return _csv(f"b12-log-{web.clock.today().isoformat()}.csv", EXPORT_HEADER, rows)

    @router.get("/me/export")
    @web.page
    def me_export(request: Request) -> Response:
        who = web.require(request, ("patient",))
        assert who.patient_id is not None
        patient = web.records.get_patient(who, who.patient_id)
        return web.render(
            "me/export.html",
            who,
            title="My log for my doctor",
            active="log",
            patient=patient,
            today=web.clock.today(),
            lines=patient_log(web, who, who.patient_id),
        )
