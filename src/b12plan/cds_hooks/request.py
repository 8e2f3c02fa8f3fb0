"""Validating a CDS Hooks 2.0 service call (https://cds-hooks.hl7.org/2.0/#http-request_1).

Only what b12plan relies on is required: ``hook`` (the service's), a UUID ``hookInstance``,
``context.patientId``, ``context.draftOrders`` for order-sign, a usable ``fhirAuthorization``
when one is sent, and prefetch values that are FHIR resources (or null). Unknown members are
allowed, as the spec's extension mechanism requires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from b12plan.cds_hooks.discovery import ServiceSpec
from b12plan.fhir.outcome import REQUIRED, STRUCTURE, VALUE, error


class RequestError(ValueError):
    """The call is malformed; ``errors`` name each problem by its JSON path."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" for e in errors))


@dataclass(frozen=True)
class HookCall:
    hook: str
    hook_instance: str
    patient_id: str
    context: dict[str, Any]
    fhir_server: str | None
    access_token: str | None
    prefetch: dict[str, Any] | None


def _text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def parse_call(body: object, spec: ServiceSpec) -> HookCall:
    """The call, or ``RequestError`` listing every problem found."""
    if not isinstance(body, dict):
        raise RequestError([error("", "expected a JSON object", STRUCTURE)])
    problems: list[dict[str, str]] = []
    hook = body.get("hook")
    if not _text(hook):
        problems.append(error("hook", "required", REQUIRED))
    elif hook != spec.hook:
        problems.append(
            error("hook", f"service {spec.id} answers {spec.hook!r}, not {hook!r}", VALUE)
        )
    instance = body.get("hookInstance")
    if not _text(instance):
        problems.append(error("hookInstance", "required", REQUIRED))
    else:
        try:
            uuid.UUID(str(instance))
        except ValueError:
            problems.append(error("hookInstance", f"not a UUID: {instance!r}", VALUE))
    context = body.get("context")
    patient_id = None
    if not isinstance(context, dict):
        problems.append(error("context", "required: an object", REQUIRED))
        context = {}
    else:
        patient_id = context.get("patientId")
        if not _text(patient_id):
            problems.append(error("context.patientId", "required", REQUIRED))
        if spec.hook == "order-sign":
            orders = context.get("draftOrders")
            if not isinstance(orders, dict) or orders.get("resourceType") != "Bundle":
                problems.append(
                    error(
                        "context.draftOrders", "required: a FHIR Bundle of draft orders", REQUIRED
                    )
                )
    server = body.get("fhirServer")
    if server is not None and not (
        isinstance(server, str) and server.startswith(("https://", "http://"))
    ):
        problems.append(error("fhirServer", f"not an http(s) URL: {server!r}", VALUE))
    token = None
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if server is None:
            problems.append(
                error("fhirAuthorization", "given without the fhirServer it is for", VALUE)
            )
        if not isinstance(auth, dict):
            problems.append(error("fhirAuthorization", "expected an object", STRUCTURE))
        else:
            token = auth.get("access_token")
            if not _text(token):
                problems.append(error("fhirAuthorization.access_token", "required", REQUIRED))
            if auth.get("token_type") != "Bearer":
                problems.append(error("fhirAuthorization.token_type", "must be 'Bearer'", VALUE))
    prefetch = body.get("prefetch")
    if prefetch is not None:
        if not isinstance(prefetch, dict):
            problems.append(error("prefetch", "expected an object", STRUCTURE))
        else:
            for key, value in prefetch.items():
                if value is not None and not (
                    isinstance(value, dict) and _text(value.get("resourceType"))
                ):
                    problems.append(
                        error(f"prefetch.{key}", "expected a FHIR resource or null", STRUCTURE)
                    )
    if problems:
        raise RequestError(problems)
    assert isinstance(hook, str) and isinstance(patient_id, str)
    return HookCall(
        hook=hook,
        hook_instance=str(instance),
        patient_id=patient_id,
        context=context,
        fhir_server=server.rstrip("/") if isinstance(server, str) else None,
        access_token=token if isinstance(token, str) else None,
        prefetch=prefetch if isinstance(prefetch, dict) else None,
    )
