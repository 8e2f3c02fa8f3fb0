"""The web UI's routes: clinician and patient pages, forms, static files.

Thin on purpose: each handler checks who is signed in (the service's session cookie), calls the
service layer (which enforces access again), and renders a template. Handlers are plain ``def``
so FastAPI runs the blocking service calls in its thread pool; only reading the form is async
(a dependency). Forms follow post/redirect/get: a valid form redirects (303) back to its page
with a confirmation; an invalid one re-renders the page with status 422 and the messages next to
the fields. Every page works without JavaScript; htmx (``hx-boost``) only makes it smoother.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import urlencode

import jinja2
import plotly
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from b12plan.core.assessment import Assessment
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.reminders.service import ReminderService
from b12plan.service import (
    SESSION_COOKIE,
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
from b12plan.service.carers import CarerService
from b12plan.service.errors import TooManyAttempts
from b12plan.service.schemas import (
    KINDS,
    AdministrationIn,
    AdverseEventIn,
    DecisionIn,
    ObservationIn,
    PrescriptionIn,
    PriorTreatmentIn,
    R,
    SymptomIn,
    WorklistQuery,
)
from b12plan.web import diary as diary_rules
from b12plan.web.answers import monitoring_label, patient_answers
from b12plan.web.chart import TimelineRow, timeline_figure, timeline_rows
from b12plan.web.forms import (
    Field,
    Form,
    adverse_event_fields,
    build_input,
    decision_fields,
    errors_by_field,
    injection_fields,
    lab_fields,
    prescription_fields,
    prior_treatment_fields,
    self_injection_fields,
    symptom_fields,
    typed_values,
    unit_choices,
)
from b12plan.web.page_models import (
    INJECTION_SITES,
    WORKLIST_GROUPS,
    age_on,
    allergic_codes,
    clinician_notices,
    dose_validity_view,
    escalation_advice,
    explain_findings,
    order_worklist,
    patient_notices,
    regimen_view,
    rotation_hint,
    upcoming,
    window_view,
)
from b12plan.web.reminders import add_carer_routes, add_export_routes, add_reminder_routes
from b12plan.web.text import human_date, num, weeks

STAFF = ("clinician", "admin")
PATIENT = ("patient",)
PAGE_HEADERS = {
    "Cache-Control": "no-store",  # pages hold patient data: never kept by a shared cache
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
Calendar = Callable[[Assessment, str], bytes]
"""Makes the .ics of an assessment (``assessment_calendar(assessment, patient_id)``)."""

_STATIC = resources.files(__package__).joinpath("static")
_WORKLIST_LIMIT = 200
_LOOKAHEAD_DAYS = 366  # ask the service for everyone with anything due within a year, then
# keep what needs doing today (loading courses have no warning of their own)


class _Stop(Exception):
    """Leave a handler early with this response (a redirect to sign in, a 403 page)."""

    def __init__(self, response: Response) -> None:
        super().__init__("stop")
        self.response = response


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


def _home(role: str) -> str:
    """Where each role lands after signing in."""
    return {"patient": "/me", "carer": "/carer"}.get(role, "/clinic")


async def _form_data(request: Request) -> dict[str, str]:
    """The posted form as text. Cross-site posts never get here: ``b12plan.api.guard`` refuses
    them for every route before the body is read (one CSRF rule for the whole site)."""
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


P = ParamSpec("P")


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
        elif who is not None and who.role == "carer":
            nav = [("/carer", "People I care for", "carer")]
        elif who is not None:
            nav = [
                ("/me", "My schedule", "me"),
                ("/me/log", "Log", "log"),
                ("/me/questions", "Questions", "questions"),
                ("/me/settings", "Reminders", "settings"),
            ]
        html = self.env.get_template(name).render(
            user=who,
            nav=nav,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def error(
        self, request: Request, who: Principal | None, status: int, heading: str, message: str
    ) -> HTMLResponse:
        home = _home(who.role) if who is not None else "/login"
        return self.render(
            "error.html",
            who,
            status=status,
            title=heading,
            heading=heading,
            message=message,
            tone="critical" if status >= 500 else "warning",
            home=home if who is not None else "/login",
            active="",
        )

    # --- who is asking -------------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        token = request.cookies.get(self.cookie_name)
        return self.auth.current_user(token) if token else None

    def require(self, request: Request, roles: tuple[str, ...]) -> Principal:
        who = self.principal(request)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _Stop(RedirectResponse("/login?" + urlencode({"next": target}), 303))
        if who.role not in roles:
            place = {STAFF: "clinic staff", ("carer",): "carers"}.get(roles, "patients")
            raise _Stop(
                self.error(
                    request,
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
            except _Stop as stop:
                return stop.response
            except NotFound as exc:
                return self.error(request, self.principal(request), 404, "Not found", exc.detail)
            except Forbidden as exc:
                return self.error(request, self.principal(request), 403, "Not allowed", exc.detail)
            except Unauthenticated:
                return RedirectResponse("/login", 303)
            except StoredRecordInvalid as exc:
                detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in exc.errors)
                return self.error(
                    request,
                    self.principal(request),
                    500,
                    "This record needs attention",
                    f"{exc.detail}. {detail}",
                )
            except ServiceError as exc:  # e.g. a record that cannot be assessed on this date
                status = 422 if isinstance(exc, InvalidInput) else 400
                return self.error(request, self.principal(request), status, exc.title, exc.detail)

        return wrapper

    # --- shared data ------------------------------------------------------------------------

    def case(self, who: Principal, patient_id: str, today: date) -> Case:
        return self.records.patient_case(who, patient_id, as_of=today)

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

    # --- clinician pages -------------------------------------------------------------------

    def clinic_forms(
        self, patient_id: str, case: Case, assessment: Assessment, today: date
    ) -> dict[str, Form]:
        k = self.knowledge
        base = f"/clinic/patients/{patient_id}"
        day = today.isoformat()
        dose = self.dose_defaults(case, assessment)
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
                _lab_fields(k, analyte.code),
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
        self,
        request: Request,
        who: Principal,
        patient_id: str,
        *,
        failed: Form | None = None,
        saved: str | None = None,
        template: str = "clinic/patient.html",
    ) -> HTMLResponse:
        today = self.clock.today()
        patient = self.records.get_patient(who, patient_id)
        assessment = self.records.assess_patient(who, patient_id, as_of=today)
        case = self.case(who, patient_id, today)
        forms = self.clinic_forms(patient_id, case, assessment, today)
        if failed is not None:
            forms[failed.id] = failed
        decision_labels = {d.code: d.label for d in self.knowledge.decisions}
        figure_json, rows = self.chart(case, assessment)
        rx = case.prescription
        current_rx = (
            f"{rx.product} {num(rx.dose)} {rx.unit} {rx.route}, {rx.phase}, every "
            f"{rx.interval_days} days from {rx.start.isoformat()}"
            + (f" to {rx.end.isoformat()}" if rx.end else "")
            if rx is not None
            else "none"
        )
        return self.render(
            template,
            who,
            status=422 if failed is not None else 200,
            title=patient.display_name,
            active="patients",
            patient=patient,
            age=age_on(case, today),
            causes=[self.knowledge.cause(c).label for c in case.causes],
            today=today,
            assessment=assessment,
            window=window_view(assessment.next_dose, today),
            regimen=regimen_view(assessment, self.knowledge),
            findings=explain_findings(assessment.findings, self.knowledge),
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

    # --- patient pages -----------------------------------------------------------------

    def me_forms(self, case: Case, assessment: Assessment, today: date) -> dict[str, Form]:
        k = self.knowledge
        day = today.isoformat()
        hint = rotation_hint(case.administrations)
        return {
            "self-injection": Form(
                "self-injection",
                "Log an injection",
                "/me/injections",
                "Log this injection",
                self_injection_fields(k, INJECTION_SITES),
                {
                    "date": day,
                    "given_by": "self",
                    "site": hint.suggested,
                    **self.dose_defaults(case, assessment),
                },
            ),
            "diary": Form(
                "diary",
                "Symptom diary",
                "/me/diary",
                "Save my diary",
                (Field("date", "Date", "date", required=True),),
                {"date": day},
            ),
            "side-effect": Form(
                "side-effect",
                "Report a side effect",
                "/me/side-effects",
                "Report side effect",
                adverse_event_fields(k, patient=True),
                {"date": day},
            ),
        }

    def me_log_page(
        self,
        request: Request,
        who: Principal,
        *,
        failed: Form | None = None,
        saved: str | None = None,
        urgent_code: str | None = None,
    ) -> HTMLResponse:
        pid = _own(who)
        today = self.clock.today()
        assessment = self.records.assess_patient(who, pid, as_of=today)
        case = self.case(who, pid, today)
        forms = self.me_forms(case, assessment, today)
        if failed is not None:
            forms[failed.id] = failed
        urgent = None
        if urgent_code is not None and urgent_code in allergic_codes(self.knowledge):
            urgent = {
                "label": self.knowledge.adverse_event(urgent_code).label,
                "advice": self.knowledge.finding("ALLERGIC_REACTION").advice,
            }
        rules = diary_rules.load_diary_rules()
        return self.render(
            "me/log.html",
            who,
            status=422 if failed is not None else 200,
            title="Log",
            active="log",
            forms=forms,
            rotation=rotation_hint(case.administrations),
            scales=rules.scales,
            scale_max=rules.scale_max,
            saved=saved,
            urgent=urgent,
            today=today,
            notices=patient_notices(assessment, today),
            escalation=escalation_advice(assessment, self.knowledge),
        )


_ITEM_PREFIX = re.compile(r"^\[\d+\]\.")


def _prior_values(case: Case) -> dict[str, str]:
    """The prior treatment form shows what is recorded (saving it corrects that record)."""
    prior = case.prior_treatment
    if prior is None:
        return {}
    return {
        "since": prior.since.isoformat(),
        "loading_completed": "yes" if prior.loading_completed else "no",
    }


def _own(who: Principal) -> str:
    if who.patient_id is None:
        raise Forbidden("this account is not linked to a patient record")
    return who.patient_id


def _lab_fields(knowledge: Knowledge, analyte: str) -> tuple[Field, ...]:
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


def _failed(form: Form, values: Mapping[str, str], problems: Any) -> Form:
    errors, general = errors_by_field(problems, form.fields)
    return replace(form, values=dict(values), errors=errors, general=general)


def _save(
    records: RecordsService,
    who: Principal,
    patient_id: str,
    blank: Form,
    model: type[R],
    form: Mapping[str, str],
    redisplay: Callable[[Form], Response],
) -> R | Response:
    """Store the record a submitted form describes, or show the form again with its problems
    (field types, the record's own rules, then the service's checks against the whole case)."""
    values, errors = typed_values(blank.fields, form)
    if errors:
        return redisplay(replace(blank, values=dict(form), errors=errors))
    data, problems = build_input(model, values)
    if data is None:
        return redisplay(_failed(blank, form, problems))
    try:
        if isinstance(data, PriorTreatmentIn):
            _save_prior_treatment(records, who, patient_id, data)
        else:
            records.add_record(who, patient_id, data)
    except InvalidInput as exc:
        return redisplay(_failed(blank, form, exc.errors))
    return data


def _save_prior_treatment(
    records: RecordsService, who: Principal, patient_id: str, data: PriorTreatmentIn
) -> None:
    """A patient has one prior treatment record: the form adds it, or corrects the current one."""
    kind = KINDS["prior_treatment"]
    current = records.list_records(who, patient_id, kind)
    if not current:
        records.add_record(who, patient_id, data)
        return
    latest = current[-1]
    records.correct_record(who, patient_id, latest.id, data, expected_version=latest.version)


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: no open redirect through the sign-in form."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    return target


SAVED = {
    "injection": "Injection recorded.",
    "lab": "Lab result recorded.",
    "symptom": "Symptom assessment recorded.",
    "adverse-event": "Side effect recorded.",
    "prescription": "Prescription saved.",
    "decision": "Decision recorded.",
    "prior-treatment": "Prior treatment saved.",
    "self-injection": "Thank you: your injection is logged.",
    "diary": "Thank you: your diary is saved.",
    "side-effect": "Thank you: your side effect is recorded and your clinic can see it.",
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
    rules = diary_rules.load_diary_rules()
    diary_rules.check_rules(rules, knowledge)
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

    # --- signing in and out ------------------------------------------------------------------

    @router.get("/")
    @web.page
    def home(request: Request) -> Response:
        who = web.principal(request)
        if who is None:
            return RedirectResponse("/login", 303)
        return RedirectResponse(_home(who.role), 303)

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
            next_url=_safe_next(next) or "",
        )

    @router.post("/login")
    @web.page
    def login(request: Request, form: dict[str, str] = Depends(_form_data)) -> Response:
        username = form.get("username", "").strip()
        password = form.get("password", "")
        address = request.client.host if request.client else None
        try:
            issued = auth.login(username, password, kind="cookie", address=address)
        except TooManyAttempts as exc:
            page = web.error(
                request,
                None,
                429,
                "Too many sign-in attempts",
                f"Too many failed sign-ins. Please wait {exc.retry_after} seconds and try again.",
            )
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
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
                next_url=_safe_next(form.get("next")) or "",
            )
        role = issued.user.role
        target = _safe_next(form.get("next")) or _home(role)
        response = RedirectResponse(target, 303)
        max_age = int((issued.expires_at - clock.now()).total_seconds())
        response.set_cookie(
            cookie_name,
            issued.access_token,
            max_age=max(max_age, 0),
            httponly=True,
            samesite="lax",
            secure=secure_cookies,
            path="/",
        )
        return response

    @router.post("/logout")
    @web.page
    def logout(request: Request, form: dict[str, str] = Depends(_form_data)) -> Response:
        token = request.cookies.get(cookie_name)
        if token:
            auth.logout(token)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(cookie_name, path="/", secure=secure_cookies, httponly=True)
        return response

    # --- clinician: worklist, patients, patient page ---------------------------------------------

    @router.get("/clinic")
    @web.page
    def worklist(request: Request, code: str = "", clinic: str = "") -> Response:
        who = web.require(request, STAFF)
        today = clock.today()
        clinics = auth.list_clinics(who)
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
            _lab_fields(knowledge, code),
            {"unit": next(iter(v for v, _ in unit_choices(knowledge, code)), "")},
        )
        macro = web.env.get_template("_macros.html").module.field  # type: ignore[attr-defined]
        return HTMLResponse(str(macro(form, form.field("unit"))), headers={"Vary": "HX-Request"})

    @router.get("/clinic/patients/{patient_id}")
    @web.page
    def patient_page(request: Request, patient_id: str, saved: str = "") -> Response:
        who = web.require(request, STAFF)
        return web.patient_page(request, who, patient_id, saved=SAVED.get(saved))

    @router.get("/clinic/patients/{patient_id}/print")
    @web.page
    def patient_print(request: Request, patient_id: str) -> Response:
        who = web.require(request, STAFF)
        return web.patient_page(request, who, patient_id, template="clinic/print.html")

    @router.post("/clinic/patients/{patient_id}/{form_id}")
    @web.page
    def record(
        request: Request,
        patient_id: str,
        form_id: str,
        form: dict[str, str] = Depends(_form_data),
    ) -> Response:
        who = web.require(request, STAFF)
        model = CLINIC_FORMS.get(form_id)
        if model is None:
            raise NotFound(f"no form {form_id!r}")
        today = clock.today()
        patient_case = web.case(who, patient_id, today)
        assessment = records.assess_patient(who, patient_id, as_of=today)
        blank = web.clinic_forms(patient_id, patient_case, assessment, today)[form_id]
        if form_id == "lab":
            blank = replace(blank, fields=_lab_fields(knowledge, form.get("code", "")))
        saved = _save(
            records,
            who,
            patient_id,
            blank,
            model,
            form,
            lambda failed: web.patient_page(request, who, patient_id, failed=failed),
        )
        if isinstance(saved, Response):
            return saved
        return RedirectResponse(
            f"/clinic/patients/{patient_id}?saved={form_id}#summary", status_code=303
        )

    # --- patient: my schedule, log, questions, calendar --------------------------------------

    @router.get("/me")
    @web.page
    def me(request: Request) -> Response:
        who = web.require(request, PATIENT)
        pid = _own(who)
        today = clock.today()
        patient = records.get_patient(who, pid)
        assessment = records.assess_patient(who, pid, as_of=today)
        case = web.case(who, pid, today)
        figure_json, rows = web.chart(case, assessment)
        return web.render(
            "me/home.html",
            who,
            title="My schedule",
            active="me",
            patient=patient,
            today=today,
            assessment=assessment,
            notices=patient_notices(assessment, today),
            escalation=escalation_advice(assessment, knowledge),
            window=window_view(assessment.next_dose, today),
            regimen=regimen_view(assessment, knowledge),
            upcoming=upcoming(assessment),
            figure_json=figure_json,
            chart_rows=rows,
        )

    @router.get("/me/log")
    @web.page
    def me_log(request: Request, saved: str = "", code: str = "") -> Response:
        who = web.require(request, PATIENT)
        return web.me_log_page(request, who, saved=SAVED.get(saved), urgent_code=code or None)

    def own_form(who: Principal, name: str) -> tuple[str, Form]:
        """The signed-in patient's id and one of their log's forms, as it stands today."""
        pid = _own(who)
        today = clock.today()
        case = web.case(who, pid, today)
        assessment = records.assess_patient(who, pid, as_of=today)
        return pid, web.me_forms(case, assessment, today)[name]

    def save_own(
        request: Request, who: Principal, name: str, model: type[R], form: dict[str, str]
    ) -> R | Response:
        pid, blank = own_form(who, name)
        return _save(
            records,
            who,
            pid,
            blank,
            model,
            form,
            lambda failed: web.me_log_page(request, who, failed=failed),
        )

    @router.post("/me/injections")
    @web.page
    def me_injection(request: Request, form: dict[str, str] = Depends(_form_data)) -> Response:
        who = web.require(request, PATIENT)
        saved = save_own(request, who, "self-injection", AdministrationIn, form)
        if isinstance(saved, Response):
            return saved
        return RedirectResponse("/me/log?saved=self-injection", status_code=303)

    @router.post("/me/diary")
    @web.page
    def me_diary(request: Request, form: dict[str, str] = Depends(_form_data)) -> Response:
        who = web.require(request, PATIENT)
        pid, blank = own_form(who, "diary")
        scores, errors = diary_rules.parse_scores(form, rules)
        fields = (*blank.fields, *(Field(s.field, s.label, "int") for s in rules.scales))
        blank = replace(blank, fields=fields)
        day_text = form.get("date", "").strip()
        probe, problems = build_input(
            SymptomIn, {"code": rules.scales[0].code, "date": day_text, "status": "present"}
        )
        if probe is None:
            errors.update(errors_by_field(problems, blank.fields)[0])
        if errors:
            return web.me_log_page(request, who, failed=replace(blank, values=form, errors=errors))
        assert probe is not None
        stored = records.list_records(who, pid, KINDS["symptoms"])
        stored.sort(key=lambda r: (r.data.date, r.recorded_at))
        history = diary_rules.latest_by_code(
            (r.data.code, r.data.date, r.data.status, r.data.note) for r in stored
        )
        entries = diary_rules.diary_entries(scores, history, probe.date, rules, knowledge)
        if not entries:
            message = (
                "Nothing to record: choose a score for at least one symptom (a 0 is recorded "
                "only for a symptom you reported before)."
            )
            return web.me_log_page(
                request, who, failed=replace(blank, values=form, general=[message])
            )
        try:
            records.add_records(
                who,
                pid,
                [
                    SymptomIn(
                        code=entry.code, date=entry.date, status=entry.status, note=entry.note
                    )
                    for entry in entries
                ],
            )
        except InvalidInput as exc:  # every entry shares the form's date: show it there
            problems = [{**e, "loc": _ITEM_PREFIX.sub("", e["loc"])} for e in exc.errors]
            return web.me_log_page(request, who, failed=_failed(blank, form, problems))
        return RedirectResponse("/me/log?saved=diary", status_code=303)

    @router.post("/me/side-effects")
    @web.page
    def me_side_effect(request: Request, form: dict[str, str] = Depends(_form_data)) -> Response:
        who = web.require(request, PATIENT)
        saved = save_own(request, who, "side-effect", AdverseEventIn, form)
        if isinstance(saved, Response):
            return saved
        query = {"saved": "side-effect", "code": saved.code}
        return RedirectResponse("/me/log?" + urlencode(query) + "#urgent", status_code=303)

    @router.get("/me/questions")
    @web.page
    def me_questions(request: Request) -> Response:
        who = web.require(request, PATIENT)
        pid = _own(who)
        assessment = records.assess_patient(who, pid, as_of=clock.today())
        return web.render(
            "me/questions.html",
            who,
            title="Questions and answers",
            active="questions",
            answers=patient_answers(assessment, knowledge),
        )

    @router.get("/me/calendar.ics")
    @web.page
    def me_calendar(request: Request) -> Response:
        who = web.require(request, PATIENT)
        pid = _own(who)
        assessment = records.assess_patient(who, pid, as_of=clock.today())
        return Response(
            calendar(assessment, pid),
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="b12-injections.ics"'},
        )

    if reminders is not None:
        add_reminder_routes(router, web, reminders, _form_data, public_url=public_url)
    if carers is not None:
        add_carer_routes(router, web, carers, _form_data)
    add_export_routes(router, web)
    return router
