"""Carer pages: the patient's carers (invite, remove) and the carer's own pages (the schedules
of the people they care for, and "log an injection I gave").

A carer reaches only the people linked to them (``CarerService``); the records service stores
what they log as ``given_by: carer`` whatever the form says (ADR 0060).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from b12plan.service import InvalidInput, Principal
from b12plan.service.carers import CarerService
from b12plan.web.context import CARER, PATIENT, WebContext, form_data, own_patient
from b12plan.web.forms import form_date
from b12plan.web.page_models import upcoming, window_view


def add_carer_routes(router: APIRouter, web: WebContext, carers: CarerService) -> None:
    """The patient's carers (on their settings page) and the carer's own pages."""

    def carers_section(request: Request, who: Principal, code: str | None = None) -> Response:
        return web.render(
            "me/carers.html",
            who,
            title="My carers",
            active="settings",
            carers=carers.carers_of(who, own_patient(who)),
            code=code,
        )

    @router.get("/me/carers")
    @web.page
    def me_carers(request: Request) -> Response:
        return carers_section(request, web.require(request, PATIENT))

    @router.post("/me/carers")
    @web.page
    def me_carers_change(request: Request, form: dict[str, str] = Depends(form_data)) -> Response:
        who = web.require(request, PATIENT)
        if form.get("action") == "remove":
            carers.unlink(who, form.get("carer", ""), own_patient(who))
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
        day, problems = form_date(form.get("date", ""))
        if day is not None:
            try:
                web.records.log_planned_dose(who, patient_id, day, site=form.get("site"))
            except InvalidInput as exc:
                problems = exc.errors
        errors = {e["loc"] or "date": e["msg"] for e in problems}
        if errors:
            return person_page(request, who, patient_id, errors=errors, status=422)
        return RedirectResponse(f"/carer/patients/{patient_id}?saved=1", status_code=303)
