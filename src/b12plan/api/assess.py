"""Stateless assessment, the worklist and the health check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from b12plan.api.params import AsOf, PayloadTooLarge
from b12plan.api.problems import problem_responses
from b12plan.api.records import ASSESSMENT_RESPONSE
from b12plan.contract import CaseError, load_json
from b12plan.service.errors import FieldError, InvalidInput
from b12plan.service.records import RecordsService
from b12plan.service.schemas import (
    MAX_OFFSET,
    Code,
    Page,
    Principal,
    Slug,
    SortKey,
    WorklistQuery,
    WorklistRow,
)

MAX_CASE_BYTES = 1_000_000  # a year of daily records is far smaller


CASE_EXAMPLE: dict[str, Any] = {
    "schema_version": 1,
    "as_of": "2026-03-01",
    "jurisdiction": "GB",
    "patient": {"id": "p-001", "sex": "female", "birth_date": "1958-04-02"},
    "causes": ["pernicious_anaemia"],
    "symptoms": [{"code": "paraesthesia", "date": "2026-01-02", "status": "present"}],
    "observations": [{"code": "b12_total", "date": "2025-12-20", "value": 98, "unit": "pmol/L"}],
    "administrations": [
        {
            "date": "2026-01-05",
            "product": "hydroxocobalamin",
            "dose": 1,
            "unit": "mg",
            "route": "IM",
        }
    ],
}


def make_assess_router(
    records: RecordsService,
    current_user: Callable[..., Principal],
    health: Callable[[], dict[str, Any]],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    me = Depends(current_user)

    @router.post(
        "/assess",
        tags=["assessment"],
        responses={**ASSESSMENT_RESPONSE, **problem_responses(401, 413, 422)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "A contract v1 case document.",
                "content": {
                    "application/json": {"schema": {"type": "object"}, "example": CASE_EXAMPLE}
                },
            }
        },
    )
    async def assess(request: Request, who: Principal = me) -> JSONResponse:
        """Stateless: a contract case in, its assessment out. Nothing is stored or read.

        Invalid input is a 422 problem whose ``errors`` name each field as the contract does
        (``observations[2].unit``). Any signed-in user may call it.
        """
        body = await request.body()
        if len(body) > MAX_CASE_BYTES:
            raise PayloadTooLarge(
                f"a case document may be at most {MAX_CASE_BYTES} bytes; this one is {len(body)}"
            )
        try:
            text = body.decode("utf-8")
            document = load_json(text)
        except UnicodeDecodeError:
            raise InvalidInput(
                [FieldError(loc="", msg="the body is not UTF-8 text", type="encoding")]
            ) from None
        except CaseError as exc:
            raise InvalidInput(cast(list[FieldError], exc.errors)) from None
        assessment = await run_in_threadpool(records.assess_document, document)
        return JSONResponse(assessment.to_dict())

    @router.get(
        "/worklist",
        response_model=Page[WorklistRow],
        tags=["worklist"],
        responses=problem_responses(401, 403, 422),
    )
    def worklist(
        who: Principal = me,
        as_of: AsOf = None,
        clinic: Annotated[Slug | None, Query(description="Only this clinic.")] = None,
        code: Annotated[
            list[Code] | None,
            Query(description="Only patients with any of these finding codes (repeatable)."),
        ] = None,
        sort: Annotated[SortKey, Query(description="urgency: critical first, most overdue")] = (
            "urgency"
        ),
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        monitoring_within_days: Annotated[
            int, Query(ge=0, le=366, description="Monitoring due up to this many days ahead.")
        ] = 0,
    ) -> Page[WorklistRow]:
        """Patients needing attention: critical or warning findings (overdue injections among
        them) or monitoring due; with ``code``, patients with those findings."""
        query = WorklistQuery(
            as_of=as_of,
            clinic=clinic,
            codes=tuple(code or ()),
            sort=sort,
            limit=limit,
            offset=offset,
            monitoring_within_days=monitoring_within_days,
        )
        return records.worklist(who, query)

    @router.get("/health", tags=["health"])
    def health_check() -> dict[str, Any]:
        """Liveness and the schema revision (no sign-in)."""
        return health()

    return router
