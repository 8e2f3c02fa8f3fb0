"""Routes for patients and their records under ``/api/v1/patients``.

Thin: each route parses, calls ``RecordsService`` and renders. The per-kind record routes are
generated from ``service.schemas.KINDS`` so every kind gets the same verbs with its own typed
body in the OpenAPI document.
"""

# Not ``from __future__ import annotations``: the generated routes annotate with per-kind types
# that FastAPI must see as real objects when the function is defined.

from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from b12plan.api.params import AsOf, IfMatch, PatientId, RecordId, etag, expected_version
from b12plan.api.problems import problem_responses
from b12plan.service.records import RecordsService
from b12plan.service.schemas import (
    KINDS,
    MAX_OFFSET,
    AuditOut,
    NewPatient,
    Page,
    PatientIn,
    PatientOut,
    Principal,
    RecordKind,
    Slug,
    StoredRecord,
)

ASSESSMENT_EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "as_of": "2026-03-01",
    "deficiency": "confirmed",
    "neurological": True,
    "cause_chronic": True,
    "phase": "loading",
    "regimen": {"protocol_id": "gb-hydroxocobalamin-neuro"},
    "next_dose": {"earliest": "2026-03-02", "due": "2026-03-03", "overdue_after": "2026-03-05"},
    "schedule": [],
    "monitoring": [],
    "findings": [],
}
ASSESSMENT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The contract v1 assessment (see docs/contract).",
        "content": {"application/json": {"example": ASSESSMENT_EXAMPLE}},
    }
}


def segment(kind: RecordKind[Any]) -> str:
    """The URL segment of a kind: ``adverse_events`` is served at ``adverse-events``."""
    return kind.name.replace("_", "-")


def make_records_router(
    records: RecordsService,
    current_user: Callable[..., Principal],
    calendar: Callable[[Any, str], bytes],
) -> APIRouter:
    """Patients, their records, assessments, calendars and audit trails."""
    router = APIRouter(prefix="/api/v1/patients", tags=["patients"])
    me = Depends(current_user)
    errors = problem_responses(401, 403, 404, 422)

    @router.get("", response_model=Page[PatientOut], responses=errors)
    def list_patients(
        *,
        who: Principal = me,
        clinic: Annotated[Slug | None, Query(description="Only this clinic.")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Page[PatientOut]:
        """Patients you may see, by name (a patient sees only themselves)."""
        return records.list_patients(who, clinic=clinic, limit=limit, offset=offset)

    @router.post(
        "",
        response_model=PatientOut,
        status_code=status.HTTP_201_CREATED,
        responses=problem_responses(401, 403, 409, 422),
    )
    def create_patient(*, who: Principal = me, new: NewPatient, response: Response) -> PatientOut:
        """Register a patient (synthetic demographics only)."""
        patient = records.create_patient(who, new)
        response.headers["Location"] = f"/api/v1/patients/{patient.id}"
        response.headers["ETag"] = etag(patient.version)
        return patient

    @router.get("/{patient_id}", response_model=PatientOut, responses=errors)
    def get_patient(
        *, who: Principal = me, patient_id: PatientId, response: Response
    ) -> PatientOut:
        patient = records.get_patient(who, patient_id)
        response.headers["ETag"] = etag(patient.version)
        return patient

    @router.put(
        "/{patient_id}",
        response_model=PatientOut,
        responses=problem_responses(401, 403, 404, 409, 422, 428),
    )
    def correct_patient(
        *,
        who: Principal = me,
        patient_id: PatientId,
        data: PatientIn,
        if_match: IfMatch = None,
        response: Response,
    ) -> PatientOut:
        """Correct demographics: a new version; the one you edited is kept, entered-in-error."""
        patient = records.correct_patient(
            who, patient_id, data, expected_version=expected_version(if_match)
        )
        response.headers["ETag"] = etag(patient.version)
        return patient

    @router.get("/{patient_id}/assessment", responses={**ASSESSMENT_RESPONSE, **errors})
    def assessment(
        *, who: Principal = me, patient_id: PatientId, as_of: AsOf = None
    ) -> JSONResponse:
        """Evaluate the stored record (entered-in-error rows ignored) on ``as_of``."""
        return JSONResponse(records.assess_patient(who, patient_id, as_of=as_of).to_dict())

    @router.get(
        "/{patient_id}/case",
        responses={200: {"description": "A contract v1 case document."}, **errors},
    )
    def case_document(
        *, who: Principal = me, patient_id: PatientId, as_of: AsOf = None
    ) -> JSONResponse:
        """The stored record as a contract v1 case (what ``b12plan assess`` reads)."""
        return JSONResponse(records.case_document(who, patient_id, as_of=as_of))

    @router.get(
        "/{patient_id}/schedule.ics",
        response_class=Response,
        responses={
            200: {"description": "iCalendar", "content": {"text/calendar": {}}},
            **errors,
        },
    )
    def schedule_ics(*, who: Principal = me, patient_id: PatientId, as_of: AsOf = None) -> Response:
        """Planned doses and monitoring as calendar events."""
        assessment = records.assess_patient(who, patient_id, as_of=as_of)
        return Response(
            calendar(assessment, patient_id),
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{patient_id}-b12.ics"'},
        )

    @router.get("/{patient_id}/audit", response_model=Page[AuditOut], responses=errors)
    def audit(
        *,
        who: Principal = me,
        patient_id: PatientId,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Page[AuditOut]:
        """Every change to this patient's record, newest first."""
        return records.audit_trail(who, patient_id, limit=limit, offset=offset)

    for kind in KINDS.values():
        _add_kind_routes(router, records, me, kind)
    return router


def _add_kind_routes(
    router: APIRouter, records: RecordsService, me: Any, kind: RecordKind[Any]
) -> None:
    Input = kind.input
    Output = StoredRecord[Input]  # type: ignore[valid-type]
    path = f"/{{patient_id}}/{segment(kind)}"
    tags: list[str | Enum] = [segment(kind)]
    read_errors = problem_responses(401, 403, 404, 422)
    write_errors = problem_responses(401, 403, 404, 409, 422, 428)

    one = TypeAdapter(Output)

    def list_records(
        *,
        who: Principal = me,
        patient_id: PatientId,
        include_entered_in_error: Annotated[
            bool, Query(description="Include every version, corrections and retractions too.")
        ] = False,
    ) -> Response:
        # A patient's records of one kind can number thousands (an imported history). FastAPI
        # would validate and serialise the list in one pydantic-core call each, the second on
        # the event loop: a call that holds the GIL throughout, stalling every other request.
        # Record by record, in this thread, each call is short and the GIL changes hands
        # between them (ADR 0069); the JSON is the same.
        items = records.list_records(
            who, patient_id, kind, include_entered_in_error=include_entered_in_error
        )
        parts = (
            one.dump_json(one.validate_python(item, from_attributes=True), by_alias=True)
            for item in items
        )
        return Response(b"[" + b",".join(parts) + b"]", media_type="application/json")

    def create_record(
        *,
        who: Principal = me,
        patient_id: PatientId,
        data: Input,  # type: ignore[valid-type]
        response: Response,
    ) -> Any:
        stored = records.add_record(who, patient_id, data)
        response.headers["Location"] = f"/api/v1/patients/{patient_id}/{segment(kind)}/{stored.id}"
        response.headers["ETag"] = etag(stored.version)
        return stored

    def get_record(
        *, who: Principal = me, patient_id: PatientId, record_id: RecordId, response: Response
    ) -> Any:
        stored = records.get_record(who, patient_id, kind, record_id)
        response.headers["ETag"] = etag(stored.version)
        return stored

    def history(*, who: Principal = me, patient_id: PatientId, record_id: RecordId) -> list[Any]:
        return records.record_history(who, patient_id, kind, record_id)

    def correct_record(
        *,
        who: Principal = me,
        patient_id: PatientId,
        record_id: RecordId,
        data: Input,  # type: ignore[valid-type]
        if_match: IfMatch = None,
        response: Response,
    ) -> Any:
        stored = records.correct_record(
            who, patient_id, record_id, data, expected_version=expected_version(if_match)
        )
        response.headers["ETag"] = etag(stored.version)
        return stored

    def retract_record(
        *,
        who: Principal = me,
        patient_id: PatientId,
        record_id: RecordId,
        if_match: IfMatch = None,
        reason: Annotated[
            str | None, Query(max_length=500, pattern=r"^[^\x00]*$", description="Why.")
        ] = None,
    ) -> Any:
        return records.retract_record(
            who,
            patient_id,
            kind,
            record_id,
            expected_version=expected_version(if_match),
            reason=reason,
        )

    label = kind.label
    a = f"an {label}" if label[0] in "aeiou" else f"a {label}"
    router.add_api_route(
        path,
        list_records,
        methods=["GET"],
        response_model=list[Output],
        tags=tags,
        responses=read_errors,
        summary=f"List {label}s",
        description=f"Current {label}s (entered-in-error ones only on request).",
    )
    router.add_api_route(
        path,
        create_record,
        methods=["POST"],
        response_model=Output,
        tags=tags,
        status_code=status.HTTP_201_CREATED,
        responses=write_errors,
        summary=f"Record {a}",
    )
    router.add_api_route(
        f"{path}/{{record_id}}",
        get_record,
        methods=["GET"],
        response_model=Output,
        tags=tags,
        responses=read_errors,
        summary=f"Read {a}",
        description="The newest version; `status` says whether it was entered in error.",
    )
    router.add_api_route(
        f"{path}/{{record_id}}/history",
        history,
        methods=["GET"],
        response_model=list[Output],
        tags=tags,
        responses=read_errors,
        summary=f"Every version of {a}",
    )
    router.add_api_route(
        f"{path}/{{record_id}}",
        correct_record,
        methods=["PUT"],
        response_model=Output,
        tags=tags,
        responses=write_errors,
        summary=f"Correct {a}",
        description=(
            "Writes a new version. Send If-Match with the version you edited; if it is no"
            " longer current the answer is 409 and nothing is written."
        ),
    )
    router.add_api_route(
        f"{path}/{{record_id}}",
        retract_record,
        methods=["DELETE"],
        response_model=Output,
        tags=tags,
        responses=write_errors,
        summary=f"Mark {a} entered-in-error",
        description="Nothing is deleted: the record is kept, marked entered-in-error.",
    )
