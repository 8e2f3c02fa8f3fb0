"""CDS Hooks 2.0 HTTP endpoints: ``GET /cds-services`` and ``POST /cds-services/{id}``.

Errors are OperationOutcomes (the form later CDS Hooks versions recommend), made by the same
builder as the FHIR routes; a record b12plan cannot read is a 200 with a card saying so.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import date
from typing import Any, cast

from fastapi import APIRouter, Depends, Request, params
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from b12plan.cds_hooks.cards import IdFactory
from b12plan.cds_hooks.data import FhirClientFactory, default_fhir_client
from b12plan.cds_hooks.service import CdsServices, LoadCase, LoadCaseAs
from b12plan.cds_hooks.services import discovery
from b12plan.core.knowledge import Knowledge
from b12plan.fhir import operation_outcome
from b12plan.fhir.outcome import STRUCTURE, error


def new_uuid() -> str:
    """The production id factory: card and suggestion ids for the client's feedback calls."""
    return str(uuid.uuid4())


async def _nobody() -> None:
    """The principal when the composition root gives none."""
    return None


def make_router(
    load_case: LoadCase | LoadCaseAs,
    *,
    knowledge: Knowledge,
    clock: Callable[[], date],
    id_factory: IdFactory,
    fhir_client_factory: FhirClientFactory | None = None,
    fhir_servers: Collection[str] | None = None,
    dependencies: Sequence[params.Depends] | None = None,
    principal: Callable[..., Any] | None = None,
) -> APIRouter:
    """The CDS Hooks routes.

    ``load_case(patient_id)`` is the fallback record when a call has no (complete) prefetch and
    no ``fhirServer``. ``fhir_client_factory(server, token)`` builds the HTTP client for a
    ``fhirServer`` (default: httpx with the bearer token). ``fhir_servers``, when given, is the
    allow-list of FHIR servers the service may query (protects against request forgery).
    ``dependencies`` guard every route; ``principal``, a FastAPI dependency giving the caller,
    makes ``load_case`` receive it as a second argument (``load_case(id, who)``).
    """

    def services_for(who: Any) -> CdsServices:
        """The services with the store bound to this request's caller (if there is one)."""
        if principal is None:
            load = cast(LoadCase, load_case)
        else:
            as_who = cast(LoadCaseAs, load_case)

            def load(patient_id: str) -> dict[str, Any] | None:
                return as_who(patient_id, who)

        return CdsServices(
            load_case=load,
            knowledge=knowledge,
            clock=clock,
            id_factory=id_factory,
            fhir_client_factory=fhir_client_factory or default_fhir_client,
            fhir_servers=fhir_servers,
        )

    router = APIRouter(tags=["CDS Hooks"], dependencies=list(dependencies or ()))

    @router.get("/cds-services", summary="CDS Hooks discovery")
    def discover() -> dict[str, Any]:
        return discovery(knowledge)

    @router.post(
        "/cds-services/{service_id}",
        summary="Call a CDS service",
        responses={400: {}, 404: {}, 412: {}},
    )
    async def call(
        service_id: str, request: Request, who: Any = Depends(principal or _nobody)
    ) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            outcome = operation_outcome([error("", f"invalid JSON: {exc}", STRUCTURE)], root="")
            return JSONResponse(outcome, status_code=400)
        services = services_for(who)
        reply = await run_in_threadpool(services.call, service_id, body)  # may query a server
        if reply.errors:
            return JSONResponse(operation_outcome(reply.errors, root=""), status_code=reply.status)
        return JSONResponse(reply.body, status_code=reply.status)

    return router
