"""Patient pages: my schedule, my log (self-injection, symptom diary, side effect), questions
and answers, and the calendar file. The carer's pages and the patient's reminder settings,
carers and exports are in ``web.reminders``; they share this module's ``WebContext``.

Everything a patient writes goes through the same ``RecordsService`` calls as the patient's
REST API, which store it as the patient's (ADR 0060) whatever the form says.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from b12plan.core.assessment import Assessment
from b12plan.core.model import Case
from b12plan.service import InvalidInput, Principal
from b12plan.service import diary as diary_rules
from b12plan.service.diary import save_diary
from b12plan.service.schemas import AdministrationIn, AdverseEventIn, R
from b12plan.web.answers import patient_answers
from b12plan.web.context import (
    PATIENT,
    WebContext,
    failed_form,
    form_data,
    own_patient,
)
from b12plan.web.forms import (
    Field,
    Form,
    adverse_event_fields,
    errors_by_field,
    form_date,
    self_injection_fields,
)
from b12plan.web.page_models import (
    INJECTION_SITES,
    allergic_codes,
    escalation_advice,
    patient_notices,
    regimen_view,
    rotation_hint,
    upcoming,
    window_view,
)

SAVED = {
    "self-injection": "Thank you: your injection is logged.",
    "diary": "Thank you: your diary is saved.",
    "side-effect": "Thank you: your side effect is recorded and your clinic can see it.",
}
_ITEM_PREFIX = re.compile(r"^\[\d+\]\.")


def me_forms(web: WebContext, case: Case, assessment: Assessment, today: date) -> dict[str, Form]:
    k = web.knowledge
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
                **web.dose_defaults(case, assessment),
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
    web: WebContext,
    who: Principal,
    *,
    failed: Form | None = None,
    saved: str | None = None,
    urgent_code: str | None = None,
) -> HTMLResponse:
    pid = own_patient(who)
    today = web.clock.today()
    assessment = web.records.assess_patient(who, pid, as_of=today)
    case = web.records.patient_case(who, pid, as_of=today)
    forms = me_forms(web, case, assessment, today)
    if failed is not None:
        forms[failed.id] = failed
    urgent = None
    if urgent_code is not None and urgent_code in allergic_codes(web.knowledge):
        urgent = {
            "label": web.knowledge.adverse_event(urgent_code).label,
            "advice": web.knowledge.finding("ALLERGIC_REACTION").advice,
        }
    rules = diary_rules.load_diary_rules()
    return web.render(
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
        escalation=escalation_advice(assessment, web.knowledge),
    )


def add_patient_routes(router: APIRouter, web: WebContext) -> None:
    """``/me`` and its log, questions and calendar file."""
    records, knowledge, clock = web.records, web.knowledge, web.clock
    rules = diary_rules.load_diary_rules()
    diary_rules.check_rules(rules, knowledge)

    @router.get("/me")
    @web.page
    def me(request: Request) -> Response:
        who = web.require(request, PATIENT)
        pid = own_patient(who)
        today = clock.today()
        patient = records.get_patient(who, pid)
        assessment = records.assess_patient(who, pid, as_of=today)
        case = records.patient_case(who, pid, as_of=today)
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
        return me_log_page(web, who, saved=SAVED.get(saved), urgent_code=code or None)

    def own_form(who: Principal, name: str) -> tuple[str, Form]:
        """The signed-in patient's id and one of their log's forms, as it stands today."""
        pid = own_patient(who)
        today = clock.today()
        case = records.patient_case(who, pid, as_of=today)
        assessment = records.assess_patient(who, pid, as_of=today)
        return pid, me_forms(web, case, assessment, today)[name]

    def save_own(who: Principal, name: str, model: type[R], form: dict[str, str]) -> R | Response:
        pid, blank = own_form(who, name)
        return web.save_record(
            who, pid, blank, model, form, lambda failed: me_log_page(web, who, failed=failed)
        )

    @router.post("/me/injections")
    @web.page
    def me_injection(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, PATIENT)
        saved = save_own(who, "self-injection", AdministrationIn, form)
        if isinstance(saved, Response):
            return saved
        return RedirectResponse("/me/log?saved=self-injection", status_code=303)

    @router.post("/me/diary")
    @web.page
    def me_diary(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, PATIENT)
        pid, blank = own_form(who, "diary")
        scores, errors = diary_rules.parse_scores(form, rules)
        fields = (*blank.fields, *(Field(s.field, s.label, "int") for s in rules.scales))
        blank = replace(blank, fields=fields)
        day, problems = form_date(form.get("date", ""))
        errors.update(errors_by_field(problems, blank.fields)[0])
        if errors or day is None:
            return me_log_page(web, who, failed=replace(blank, values=form, errors=errors))
        try:
            save_diary(records, who, pid, day, scores)
        except InvalidInput as exc:  # every entry shares the form's date: show it there
            problems = [{**e, "loc": _ITEM_PREFIX.sub("", e["loc"])} for e in exc.errors]
            return me_log_page(web, who, failed=failed_form(blank, form, problems))
        return RedirectResponse("/me/log?saved=diary", status_code=303)

    @router.post("/me/side-effects")
    @web.page
    def me_side_effect(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, PATIENT)
        saved = save_own(who, "side-effect", AdverseEventIn, form)
        if isinstance(saved, Response):
            return saved
        query = {"saved": "side-effect", "code": saved.code}
        return RedirectResponse("/me/log?" + urlencode(query) + "#urgent", status_code=303)

    @router.get("/me/questions")
    @web.page
    def me_questions(request: Request) -> Response:
        who = web.require(request, PATIENT)
        pid = own_patient(who)
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
        pid = own_patient(who)
        assessment = records.assess_patient(who, pid, as_of=clock.today())
        return Response(
            web.calendar(assessment, pid),
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="b12-injections.ics"'},
        )
