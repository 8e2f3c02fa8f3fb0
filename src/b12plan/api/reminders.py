"""Reminder routes under ``/api/v1/patients/{id}``: the planned reminders and the settings.

Thin: parse, call ``ReminderService`` (which checks access through the records service), render.
"""

# Not ``from __future__ import annotations``: FastAPI reads the annotations at definition time.

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from b12plan.api.params import AsOf, PatientId
from b12plan.api.problems import problem_responses
from b12plan.reminders.service import Preferences, ReminderService
from b12plan.service.schemas import Principal


class ReminderOut(BaseModel):
    kind: str
    item: str | None
    title: str
    target: dt.date
    send_on: dt.date
    audience: list[str]
    lead_days: int | None
    source: str


class SettingsIO(BaseModel):
    """A patient's reminder settings (``lead_days`` empty: the clinic's usual lead time)."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["none", "email", "calendar", "both"] = "none"
    email: str | None = None
    lead_days: int | None = None
    quiet_start: str | None = None
    quiet_end: str | None = None
    time_zone: str = "Europe/London"
    language: str = "en"
    calendar_active: bool = False


def make_reminders_router(
    reminders: ReminderService, current_user: Callable[..., Principal]
) -> APIRouter:
    router = APIRouter(prefix="/api/v1/patients", tags=["reminders"])
    me = Depends(current_user)
    errors = problem_responses(401, 403, 404, 422)

    @router.get("/{patient_id}/reminders", response_model=list[ReminderOut], responses=errors)
    def planned(
        *,
        who: Principal = me,
        patient_id: PatientId,
        as_of: AsOf = None,
        days: Annotated[int, Query(ge=1, le=366, description="How many days ahead.")] = 30,
    ) -> list[ReminderOut]:
        """The reminders this patient would get from ``as_of`` over ``days`` days."""
        day = as_of or reminders.clock.today()
        end = day + dt.timedelta(days=days - 1)
        return [
            ReminderOut(
                kind=r.kind,
                item=r.item,
                title=r.title,
                target=r.target,
                send_on=r.send_on,
                audience=list(r.audience),
                lead_days=r.lead_days,
                source=r.source,
            )
            for r in reminders.plan(who, patient_id, day)
            if r.send_on <= end
        ]

    @router.get("/{patient_id}/reminder-settings", response_model=SettingsIO, responses=errors)
    def get_settings(*, who: Principal = me, patient_id: PatientId) -> SettingsIO:
        return _out(reminders.preferences(who, patient_id))

    @router.put("/{patient_id}/reminder-settings", response_model=SettingsIO, responses=errors)
    def put_settings(*, who: Principal = me, patient_id: PatientId, body: SettingsIO) -> SettingsIO:
        """Replace the settings (``calendar_active`` is read-only: use the web settings page)."""
        data: dict[str, Any] = body.model_dump(exclude={"calendar_active"})
        return _out(reminders.set_preferences(who, patient_id, data))

    return router


def _out(prefs: Preferences) -> SettingsIO:
    return SettingsIO(
        channel=prefs.channel,
        email=prefs.email,
        lead_days=prefs.lead_days,
        quiet_start=prefs.quiet_start,
        quiet_end=prefs.quiet_end,
        time_zone=prefs.time_zone,
        language=prefs.language,
        calendar_active=prefs.calendar_active,
    )
