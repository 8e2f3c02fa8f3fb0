"""Clinic pages, for clinicians and admins: the worklist, patients, a patient's page and its
forms, the printable summary, bookings and reminders, and (admins) the clinic's users.

Each handler parses the form, calls the service (which enforces access again) and renders; a
valid form redirects (303) back to its page with a confirmation, an invalid one re-renders the
page with status 422 and the messages next to the fields (post/redirect/get).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from b12plan.core.assessment import Assessment
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.reminders.service import ReminderService
from b12plan.service import NotFound, Principal
from b12plan.service.schemas import (
    AdministrationIn,
    AdverseEventIn,
    DecisionIn,
    ObservationIn,
    PrescriptionIn,
    PriorTreatmentIn,
    SymptomIn,
    WorklistQuery,
)
from b12plan.web.context import ADMIN, STAFF, WebContext, csv_download, form_data
from b12plan.web.forms import (
    Field,
    Form,
    adverse_event_fields,
    decision_fields,
    injection_fields,
    lab_fields,
    prescription_fields,
    prior_treatment_fields,
    symptom_fields,
    unit_choices,
)
from b12plan.web.page_models import (
    INJECTION_SITES,
    WORKLIST_GROUPS,
    age_on,
    clinician_notices,
    dose_validity_view,
    explain_findings,
    order_worklist,
    regimen_view,
    upcoming,
    window_view,
)
from b12plan.web.text import num

_WORKLIST_LIMIT = 200
_LOOKAHEAD_DAYS = 366  # ask the service for everyone with anything due within a year, then
# keep what needs doing today (loading courses have no warning of their own)

SAVED = {
    "injection": "Injection recorded.",
    "lab": "Lab result recorded.",
    "symptom": "Symptom assessment recorded.",
    "adverse-event": "Side effect recorded.",
    "prescription": "Prescription saved.",
    "decision": "Decision recorded.",
    "prior-treatment": "Prior treatment saved.",
}

CLINIC_FORMS: dict[str, type[Any]] = {
    "injection": AdministrationIn,
    "lab": ObservationIn,
    "symptom": SymptomIn,
    "adverse-event": AdverseEventIn,
    "prescription": PrescriptionIn,
    "decision": DecisionIn,
    "prior-treatment": PriorTreatmentIn,
}

USER_ACTIONS = {
    # action: (active afterwards, button, what happens)
    "disable": (
        False,
        "Disable",
        "They are signed out everywhere at once and cannot sign in until an admin enables "
        "them again. Their records and audit entries are kept.",
    ),
    "enable": (True, "Enable", "They can sign in again with their password."),
}


def lab_form_fields(knowledge: Knowledge, analyte: str) -> tuple[Field, ...]:
    """The lab form; choosing the test fetches that test's units (htmx), without JS the server
    re-renders the list when the unit does not fit."""
    fields = lab_fields(knowledge, analyte)
    code = next(f for f in fields if f.name == "code")
    wired = replace(
        code,
        attrs=(
            ("hx-get", "/clinic/lab-units"),
            ("hx-trigger", "change"),
            ("hx-target", "#lab-unit-field"),
            ("hx-select", "#lab-unit-field"),
            ("hx-swap", "outerHTML"),
        ),
    )
    return tuple(wired if f.name == "code" else f for f in fields)


def _prior_values(case: Case) -> dict[str, str]:
    """The prior treatment form shows what is recorded (saving it corrects that record)."""
    prior = case.prior_treatment
    if prior is None:
        return {}
    return {
        "since": prior.since.isoformat(),
        "loading_completed": "yes" if prior.loading_completed else "no",
    }


def clinic_forms(
    web: WebContext, patient_id: str, case: Case, assessment: Assessment, today: date
) -> dict[str, Form]:
    """The forms of a patient's page, filled with today's date and the current order."""
    k = web.knowledge
    base = f"/clinic/patients/{patient_id}"
    day = today.isoformat()
    dose = web.dose_defaults(case, assessment)
    analyte = k.analytes[0]
    rx_values = {**dose, "start": day}
    if case.prescription is not None:
        rx = case.prescription
        rx_values.update(phase=rx.phase, interval_days=str(rx.interval_days))
        if rx.brand:
            rx_values["brand"] = rx.brand
    elif assessment.regimen is not None:
        rx_values.update(
            phase="maintenance",
            interval_days=str(assessment.regimen.maintenance_interval_days),
        )
    return {
        "injection": Form(
            "injection",
            "Record an injection",
            f"{base}/injection",
            "Record injection",
            injection_fields(k, INJECTION_SITES),
            {"date": day, "given_by": "clinic", **dose},
        ),
        "lab": Form(
            "lab",
            "Record a lab result",
            f"{base}/lab",
            "Record result",
            lab_form_fields(k, analyte.code),
            {"date": day, "code": analyte.code, "unit": analyte.canonical_unit},
        ),
        "symptom": Form(
            "symptom",
            "Record a symptom assessment",
            f"{base}/symptom",
            "Record symptom",
            symptom_fields(k),
            {"date": day, "status": "present"},
        ),
        "adverse-event": Form(
            "adverse-event",
            "Record a side effect (adverse event)",
            f"{base}/adverse-event",
            "Record side effect",
            adverse_event_fields(k),
            {"date": day},
        ),
        "prescription": Form(
            "prescription",
            "Change the prescription",
            f"{base}/prescription",
            "Save new prescription",
            prescription_fields(k),
            rx_values,
        ),
        "decision": Form(
            "decision",
            "Record a decision",
            f"{base}/decision",
            "Record decision",
            decision_fields(k),
            {"date": day},
        ),
        "prior-treatment": Form(
            "prior-treatment",
            "Treatment before this record (prior treatment)",
            f"{base}/prior-treatment",
            "Save prior treatment",
            prior_treatment_fields(),
            _prior_values(case),
        ),
    }


def patient_page(
    web: WebContext,
    who: Principal,
    patient_id: str,
    *,
    failed: Form | None = None,
    saved: str | None = None,
    template: str = "clinic/patient.html",
) -> HTMLResponse:
    today = web.clock.today()
    patient = web.records.get_patient(who, patient_id)
    assessment = web.records.assess_patient(who, patient_id, as_of=today)
    case = web.records.patient_case(who, patient_id, as_of=today)
    forms = clinic_forms(web, patient_id, case, assessment, today)
    if failed is not None:
        forms[failed.id] = failed
    decision_labels = {d.code: d.label for d in web.knowledge.decisions}
    figure_json, rows = web.chart(case, assessment)
    rx = case.prescription
    current_rx = (
        f"{rx.product} {num(rx.dose)} {rx.unit} {rx.route}, {rx.phase}, every "
        f"{rx.interval_days} days from {rx.start.isoformat()}"
        + (f" to {rx.end.isoformat()}" if rx.end else "")
        if rx is not None
        else "none"
    )
    return web.render(
        template,
        who,
        status=422 if failed is not None else 200,
        title=patient.display_name,
        active="patients",
        patient=patient,
        age=age_on(case, today),
        causes=[web.knowledge.cause(c).label for c in case.causes],
        today=today,
        assessment=assessment,
        window=window_view(assessment.next_dose, today),
        regimen=regimen_view(assessment, web.knowledge),
        findings=explain_findings(assessment.findings, web.knowledge),
        upcoming=upcoming(assessment),
        figure_json=figure_json,
        chart_rows=rows,
        recent=[r for r in reversed(rows) if not r.planned][:12],
        forms=forms,
        current_rx=current_rx,
        saved=saved,
        notices=clinician_notices(assessment),
        doses=dose_validity_view(assessment),
        decisions=[
            (d, decision_labels.get(d.code, d.code))
            for d in sorted(case.decisions, key=lambda d: d.date, reverse=True)
        ],
        prior=case.prior_treatment,
    )


def add_clinic_routes(router: APIRouter, web: WebContext) -> None:
    """The clinic's pages and forms, and the admins' users page."""
    records, knowledge, clock = web.records, web.knowledge, web.clock

    @router.get("/clinic")
    @web.page
    def worklist(request: Request, code: str = "", clinic: str = "") -> Response:
        who = web.require(request, STAFF)
        today = clock.today()
        clinics = web.auth.list_clinics(who)
        finding_codes = {f.code for f in knowledge.findings}
        chosen_code = code if code in finding_codes else ""
        chosen_clinic = clinic if clinic in {c.id for c in clinics} else ""
        page = records.worklist(
            who,
            WorklistQuery(
                as_of=today,
                clinic=chosen_clinic or None,
                codes=(chosen_code,) if chosen_code else (),
                monitoring_within_days=_LOOKAHEAD_DAYS,
                limit=_WORKLIST_LIMIT,
            ),
        )
        entries = order_worklist(page.items, today)
        if chosen_code:  # asked for a finding: show every patient with it, even if not urgent
            listed = {e.row.patient_id for e in entries}
            entries += [
                e for e in order_worklist(page.items, date.max) if e.row.patient_id not in listed
            ]
        groups = [
            (key, label, [e for e in entries if e.group == key])
            for key, label in WORKLIST_GROUPS
            if any(e.group == key for e in entries)
        ]
        return web.render(
            "clinic/worklist.html",
            who,
            title="Worklist",
            active="worklist",
            today=today,
            groups=groups,
            clinics=clinics,
            finding_choices=[(f.code, f.title, f.severity) for f in knowledge.findings],
            selected_code=chosen_code,
            selected_clinic=chosen_clinic,
            truncated=page.total > len(page.items),
            shown=len(page.items),
            total=page.total,
        )

    @router.get("/clinic/patients")
    @web.page
    def patients(request: Request) -> Response:
        who = web.require(request, STAFF)
        found = records.list_patients(who, limit=200)
        return web.render(
            "clinic/patients.html",
            who,
            title="Patients",
            active="patients",
            patients=found.items,
        )

    @router.get("/clinic/lab-units")
    @web.page
    def lab_units(request: Request, code: str = "") -> Response:
        web.require(request, STAFF)
        form = Form(
            "lab",
            "",
            "",
            "",
            lab_form_fields(knowledge, code),
            {"unit": next(iter(v for v, _ in unit_choices(knowledge, code)), "")},
        )
        macro = web.env.get_template("_macros.html").module.field  # type: ignore[attr-defined]
        return HTMLResponse(str(macro(form, form.field("unit"))), headers={"Vary": "HX-Request"})

    @router.get("/clinic/patients/{patient_id}")
    @web.page
    def patient(request: Request, patient_id: str, saved: str = "") -> Response:
        who = web.require(request, STAFF)
        return patient_page(web, who, patient_id, saved=SAVED.get(saved))

    @router.get("/clinic/patients/{patient_id}/print")
    @web.page
    def patient_print(request: Request, patient_id: str) -> Response:
        who = web.require(request, STAFF)
        return patient_page(web, who, patient_id, template="clinic/print.html")

    @router.post("/clinic/patients/{patient_id}/{form_id}")
    @web.page
    def record(
        request: Request,
        patient_id: str,
        form_id: str,
        form: dict[str, str] = Depends(form_data),
    ) -> Response:
        who = web.require(request, STAFF)
        model = CLINIC_FORMS.get(form_id)
        if model is None:
            raise NotFound(f"no form {form_id!r}")
        today = clock.today()
        case = records.patient_case(who, patient_id, as_of=today)
        assessment = records.assess_patient(who, patient_id, as_of=today)
        blank = clinic_forms(web, patient_id, case, assessment, today)[form_id]
        if form_id == "lab":
            blank = replace(blank, fields=lab_form_fields(knowledge, form.get("code", "")))
        saved = web.save_record(
            who,
            patient_id,
            blank,
            model,
            form,
            lambda failed: patient_page(web, who, patient_id, failed=failed),
        )
        if isinstance(saved, Response):
            return saved
        return RedirectResponse(
            f"/clinic/patients/{patient_id}?saved={form_id}#summary", status_code=303
        )

    # --- users (admins) ----------------------------------------------------------------------

    @router.get("/clinic/users")
    @web.page
    def users(request: Request, clinic: str = "", saved: str = "", user: str = "") -> Response:
        who = web.require(request, ADMIN)
        clinics = web.auth.list_clinics(who)
        known = {c.id for c in clinics}
        if clinic == "all":
            chosen: str | None = None
        elif clinic in known:
            chosen = clinic
        else:  # the admin's own clinic first; an admin of no clinic sees everyone
            chosen = who.clinic_id if who.clinic_id in known else None
        changed = None  # the confirmation says what the user's state is, not what the URL says
        if saved in USER_ACTIONS and user:
            try:
                changed = web.auth.get_user(who, user)
            except NotFound:
                changed = None
        return web.render(
            "clinic/users.html",
            who,
            title="Users",
            active="users",
            users=web.auth.list_users(who, clinic=chosen),
            clinics=clinics,
            selected_clinic=chosen or "all",
            saved=(
                f"{changed.username} is now {'enabled' if changed.active else 'disabled'}."
                if changed is not None
                else None
            ),
        )

    @router.get("/clinic/users/{username}/{action}")
    @web.page
    def confirm_user_change(request: Request, username: str, action: str) -> Response:
        who = web.require(request, ADMIN)
        if action not in USER_ACTIONS:
            raise NotFound(f"no page {action!r}")
        target = web.auth.get_user(who, username)
        _, button, consequence = USER_ACTIONS[action]
        return web.render(
            "clinic/user-confirm.html",
            who,
            title=f"{button} {username}?",
            active="users",
            target=target,
            action=action,
            button=button,
            consequence=consequence,
        )

    @router.post("/clinic/users/{username}/{action}")
    @web.page
    def change_user(
        request: Request, username: str, action: str, form: dict[str, str] = Depends(form_data)
    ) -> Response:
        who = web.require(request, ADMIN)
        if action not in USER_ACTIONS:
            raise NotFound(f"no form {action!r}")
        changed = web.auth.set_active(who, username, USER_ACTIONS[action][0])
        query = {"saved": action, "user": changed.username}
        if changed.clinic_id:
            query["clinic"] = changed.clinic_id
        return RedirectResponse("/clinic/users?" + urlencode(query), status_code=303)


def add_booking_routes(router: APIRouter, web: WebContext, reminders: ReminderService) -> None:
    """``/clinic/reminders`` ("Bookings"): doses and check-ups to book, and did-not-attend, each
    also as CSV."""

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
    def bookingcsv_download(request: Request, days: str = "14") -> Response:
        who = web.require(request, STAFF)
        n, today, booking, _ = lists(who, days)
        rows = [
            [r.patient_id, r.display_name, r.what, r.due, r.earliest or "", r.overdue_after or ""]
            for r in booking
        ]
        header = ["patient_id", "name", "what", "due", "earliest", "overdue_after"]
        return csv_download(f"booking-{today.isoformat()}-{n}d.csv", header, rows)

    @router.get("/clinic/reminders/did-not-attend.csv")
    @web.page
    def no_showcsv_download(request: Request) -> Response:
        who = web.require(request, STAFF)
        _, today, _, no_shows = lists(who, "14")
        rows = [
            [r.patient_id, r.display_name, r.due, r.reminded_on, r.reminder, r.days_late]
            for r in no_shows
        ]
        header = ["patient_id", "name", "due", "reminded_on", "reminder", "days_late"]
        return csv_download(f"did-not-attend-{today.isoformat()}.csv", header, rows)
