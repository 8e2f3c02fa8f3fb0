"""Every error as ``application/problem+json`` (RFC 9457), made in this one module.

Shape: ``type`` (a stable URN per kind of problem), ``title``, ``status``, ``detail``,
``instance`` (the request path) and ``errors``: one ``{"loc", "msg", "type"}`` per problem,
``loc`` being the field path. Body fields are named as in the body (``observations[2].unit``,
``dose``); other inputs carry their place (``query.as_of``, ``header.If-Match``,
``path.patient_id``). A version conflict adds ``current_version``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from b12plan.api.params import PayloadTooLarge, PreconditionRequired
from b12plan.service.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    TooManyAttempts,
    Unauthenticated,
    error_message,
    field_error,
    format_loc,
)
from b12plan.service.records import StoredRecordInvalid

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("b12plan.api")

STATUS = {
    InvalidInput: 422,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    StoredRecordInvalid: 409,
    PreconditionRequired: 428,
    PayloadTooLarge: 413,
    TooManyAttempts: 429,
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": {"type": "string", "example": "urn:b12plan:problem:invalid-input"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "current_version": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "string", "example": "observations[2].unit"},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring problem+json bodies for these statuses."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed for this user",
    404: "Not found (or not visible to this user)",
    409: "Version conflict: someone changed the record since you read it",
    413: "Request body too large",
    422: "Invalid input; `errors` names each field",
    415: "Unsupported media type (JSON routes take application/json)",
    428: "If-Match header required",
    429: "Too many failed sign-ins; retry after the Retry-After header's seconds",
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:b12plan:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": list(errors),
    }
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def service_problem(exc: ServiceError, instance: str | None = None) -> JSONResponse:
    """The one mapping from service errors to HTTP."""
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    errors: Sequence[FieldError] = getattr(exc, "errors", ())
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(
        status,
        exc.type,
        exc.title,
        exc.detail,
        errors=errors,
        instance=instance,
        headers=headers,
        current_version=getattr(exc, "current_version", None),
    )


def request_errors(errors: Sequence[Any]) -> list[FieldError]:
    """FastAPI's validation errors with ``loc`` as described in the module docstring."""
    out: list[FieldError] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        place = (
            loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else ""
        )
        if place == "header" and loc and isinstance(loc[0], str):
            loc[0] = "-".join(part.capitalize() for part in loc[0].split("-"))
        path = format_loc(loc)
        if place and place != "body":
            path = f"{place}.{path}" if path else place
        type_ = str(error.get("type", "invalid"))
        msg = str(error.get("msg", "invalid"))
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        if type_ == "json_invalid":
            msg = f"invalid JSON: {ctx.get('error', msg)}"
        else:  # worded as the contract words it, whichever channel the field came through
            msg = error_message(type_, msg, error.get("input"), ctx, loc)
        out.append(field_error(path, msg[:1].lower() + msg[1:], type_))
    return out


FHIR_ISSUE_CODES = {
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def fhir_aware(request: Request, response: JSONResponse) -> JSONResponse:
    """On ``/fhir`` routes the same problem as a FHIR OperationOutcome (FHIR clients read only
    that); everywhere else the problem+json unchanged."""
    path = request.url.path
    if not (path == "/fhir" or path.startswith("/fhir/")):
        return response
    problem_body = json.loads(bytes(response.body))
    code = FHIR_ISSUE_CODES.get(response.status_code, "exception")
    issues = [
        {
            "severity": "error",
            "code": code,
            "details": {"text": e["msg"]},
            "diagnostics": f"{e['loc']}: {e['msg']}" if e["loc"] else e["msg"],
            **({"expression": [e["loc"]]} if e["loc"] else {}),
        }
        for e in problem_body.get("errors", [])
    ] or [
        {
            "severity": "error",
            "code": code,
            "details": {"text": problem_body["detail"]},
            "diagnostics": problem_body["detail"],
        }
    ]
    headers = {
        k: v for k, v in response.headers.items() if k in ("www-authenticate", "retry-after")
    }
    return JSONResponse(
        {"resourceType": "OperationOutcome", "issue": issues},
        status_code=response.status_code,
        media_type="application/fhir+json",
        headers=headers or None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through ``problem`` (an OperationOutcome on /fhir)."""

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return fhir_aware(request, service_problem(exc, request.url.path))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = request_errors(exc.errors())
        return fhir_aware(
            request,
            problem(
                422,
                "invalid-input",
                "Invalid input",
                "; ".join(f"{e['loc'] or '(body)'}: {e['msg']}" for e in errors),
                errors=errors,
                instance=request.url.path,
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return fhir_aware(
            request,
            problem(
                exc.status_code,
                slug,
                str(exc.detail),
                str(exc.detail),
                instance=request.url.path,
                headers=dict(exc.headers) if exc.headers else None,
            ),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Two writers raced for the same new id or unique name; the loser wrote nothing.
        log.info("integrity conflict on %s: %s", request.url.path, exc.orig)
        return fhir_aware(
            request,
            problem(
                409,
                "conflict",
                "Conflict",
                "a concurrent change conflicts with this one; retry",
                instance=request.url.path,
            ),
        )

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable on %s: %s", request.url.path, exc.orig)
        return fhir_aware(
            request,
            problem(
                503,
                "database-unavailable",
                "Database unavailable",
                "the database is busy or unreachable; nothing was written; retry",
                instance=request.url.path,
                headers={"Retry-After": "1"},
            ),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return fhir_aware(
            request,
            problem(
                500,
                "internal-error",
                "Internal error",
                "an unexpected error occurred; nothing was written",
                instance=request.url.path,
            ),
        )
