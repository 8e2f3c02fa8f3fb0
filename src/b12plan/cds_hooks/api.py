"""CDS Hooks 2.0 HTTP endpoints: discovery, the services, and their feedback.

``GET /cds-services``, ``POST /cds-services/{id}`` and ``POST /cds-services/{id}/feedback``.
Errors are OperationOutcomes (the form later CDS Hooks versions recommend), made by the same
builder as the FHIR routes; a record b12plan cannot read is a 200 with a card saying so.
Who may call is the ``principal`` dependency's business: in the app, ``CdsAuth`` (a trusted CDS
client's signed JWT, or a signed-in b12plan user).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, cast

from fastapi import APIRouter, Depends, Request, params
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from b12plan.cds_hooks.cards import Card, IdFactory
from b12plan.cds_hooks.data import FhirClientFactory, default_fhir_client
from b12plan.cds_hooks.discovery import discovery, service
from b12plan.cds_hooks.feedback import parse_feedback
from b12plan.cds_hooks.hooks import CdsServices, LoadCase, LoadCaseAs
from b12plan.cds_hooks.request import RequestError
from b12plan.cds_hooks.trust import (
    ClientRejected,
    ClientTrust,
    VerifiedClient,
    bearer_token,
    called_url,
    looks_like_jwt,
)
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.fhir import operation_outcome
from b12plan.fhir.outcome import NOT_FOUND, STRUCTURE, VALUE, error
from b12plan.service.cds import FeedbackItem, FeedbackProblem, IssuedCard
from b12plan.service.errors import Unauthenticated
from b12plan.service.schemas import Principal


def new_uuid() -> str:
    """The production id factory: card and suggestion ids for the client's feedback calls."""
    return str(uuid.uuid4())


async def _nobody() -> None:
    """The principal when the composition root gives none."""
    return None


@dataclass(frozen=True)
class Caller:
    """Who called: the principal the store sees, and the key cards are issued to."""

    who: Principal
    key: str
    label: str
    client: VerifiedClient | None = None


class CdsAuth:
    """A FastAPI dependency: a trusted CDS client's JWT, or a signed-in b12plan user.

    A bearer token shaped like a JWT is a CDS client's and must pass ``ClientTrust`` for the URL
    called (``public_base_url`` + path when configured, as a proxy may change what the app sees);
    anything else is handed to ``user`` (b12plan's own bearer token or session cookie). A
    verified client acts as a clinician of its configured ``clinic`` (none: no stored records).
    """

    def __init__(
        self,
        *,
        user: Callable[[Request], Principal],
        trust: ClientTrust | None = None,
        public_base_url: str | None = None,
    ) -> None:
        self.user = user
        self.trust = trust
        self.public_base_url = public_base_url

    def __call__(self, request: Request) -> Caller:
        token = bearer_token(request.headers.get("authorization"))
        if token is None or not looks_like_jwt(token):
            who = self.user(request)
            return Caller(who, key=f"user:{who.user_id or who.username}", label=who.label)
        if self.trust is None:
            raise Unauthenticated(
                "CDS client JWTs are not accepted here: this service has no trusted CDS clients"
                " configured (B12PLAN_CDS_CLIENTS)"
            )
        audience = called_url(self.public_base_url, str(request.url), request.url.path)
        try:
            verified = self.trust.verify(token, audience)
        except ClientRejected as exc:
            raise Unauthenticated(f"CDS client not trusted: {exc}") from None
        client = verified.client
        who = Principal(
            user_id=None, username=client.label, role="clinician", clinic_id=client.clinic
        )
        return Caller(who, key=f"iss:{client.iss}", label=client.label, client=verified)


class CardLedger(Protocol):
    """Where issued cards and feedback on them are kept (``b12plan.service.cds.CdsLedger``)."""

    def record_cards(
        self,
        *,
        service_id: str,
        hook_instance: str,
        patient_ref: str,
        caller: str,
        cards: Sequence[IssuedCard],
    ) -> None: ...

    def record_feedback(
        self,
        *,
        service_id: str,
        caller: str,
        author_name: str,
        author_user_id: str | None,
        items: Sequence[FeedbackItem],
    ) -> list[FeedbackProblem]: ...


def issued(card: Card) -> IssuedCard:
    """A returned card as the ledger keeps it: its uuid, finding code and suggestion uuids."""
    topic = card.get("source", {}).get("topic") or {}
    return IssuedCard(
        uuid=str(card["uuid"]),
        indicator=str(card["indicator"]),
        code=topic.get("code"),
        suggestions=tuple(str(s["uuid"]) for s in card.get("suggestions", ()) if "uuid" in s),
    )


def _outcome(status: int, errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(operation_outcome(errors, root=""), status_code=status)


def _caller_key(who: Any) -> tuple[str, str, str | None]:
    """The card log's key, the audit label and user id of whatever ``principal`` gave."""
    if isinstance(who, Caller):
        return who.key, who.label, who.who.user_id
    if isinstance(who, Principal):
        return f"user:{who.user_id or who.username}", who.label, who.user_id
    return f"caller:{who}", f"cds:{who}", None


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
    ledger: CardLedger | None = None,
    default_jurisdiction: str = "GB",
) -> APIRouter:
    """The CDS Hooks routes.

    ``load_case(patient_id)`` is the fallback record, the store's ``Case``, when a call has no
    (complete) prefetch and no ``fhirServer``. ``fhir_client_factory(server, token)`` builds the
    HTTP client for a ``fhirServer`` (default: httpx with the bearer token). ``fhir_servers``,
    when given, is the allow-list of FHIR servers the service may query (protects against
    request forgery).
    ``dependencies`` guard every route; ``principal``, a FastAPI dependency giving the caller
    (a ``Caller`` from ``CdsAuth`` in the app), guards every route too and makes ``load_case``
    receive it as a second argument (``load_case(id, who)``). ``ledger``, when given, records
    each card returned and serves the feedback endpoint. ``default_jurisdiction`` applies to
    EHR records that do not say which protocols apply (no b12plan extension, no address
    country).
    """

    def services_for(who: Any) -> CdsServices:
        """The services with the store bound to this request's caller (if there is one)."""
        if principal is None:
            load = cast(LoadCase, load_case)
        else:
            as_who = cast(LoadCaseAs, load_case)

            whom = who.who if isinstance(who, Caller) else who

            def load(patient_id: str) -> Case | None:
                return as_who(patient_id, whom)

        return CdsServices(
            load_case=load,
            knowledge=knowledge,
            clock=clock,
            id_factory=id_factory,
            fhir_client_factory=fhir_client_factory or default_fhir_client,
            fhir_servers=fhir_servers,
            default_jurisdiction=default_jurisdiction,
        )

    router = APIRouter(tags=["CDS Hooks"], dependencies=list(dependencies or ()))
    guard = Depends(principal or _nobody)

    @router.get("/cds-services", summary="CDS Hooks discovery")
    def discover(who: Any = guard) -> dict[str, Any]:
        return discovery(knowledge)

    @router.post(
        "/cds-services/{service_id}",
        summary="Call a CDS service",
        responses={400: {}, 404: {}, 412: {}},
    )
    async def call(service_id: str, request: Request, who: Any = guard) -> JSONResponse:
        # A call's prefetch may carry whole Bundles (up to the import limit): parsing and
        # reading them is CPU work, so it runs in the thread pool like the call itself.
        try:
            body = await run_in_threadpool(json.loads, await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return _outcome(400, [error("", f"invalid JSON: {exc}", STRUCTURE)])
        services = services_for(who)
        reply = await run_in_threadpool(services.call, service_id, body)  # may query a server
        if reply.errors:
            return _outcome(reply.status, list(reply.errors))
        cards = (reply.body or {}).get("cards") or []
        if ledger is not None and cards:
            await run_in_threadpool(
                ledger.record_cards,
                service_id=service_id,
                hook_instance=str(body["hookInstance"]),
                patient_ref=str(body["context"]["patientId"]),
                caller=_caller_key(who)[0],
                cards=[issued(c) for c in cards],
            )
        return JSONResponse(reply.body, status_code=reply.status)

    @router.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on a CDS service's cards (accepted or overridden)",
        responses={400: {}, 404: {}},
    )
    async def feedback(service_id: str, request: Request, who: Any = guard) -> JSONResponse:
        if service(service_id) is None or ledger is None:
            return _outcome(404, [error("", f"no CDS service {service_id!r}", NOT_FOUND)])
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return _outcome(400, [error("", f"invalid JSON: {exc}", STRUCTURE)])
        try:
            items = parse_feedback(body)
        except RequestError as exc:
            return _outcome(400, exc.errors)
        key, label, user_id = _caller_key(who)
        problems = await run_in_threadpool(
            ledger.record_feedback,
            service_id=service_id,
            caller=key,
            author_name=label,
            author_user_id=user_id,
            items=items,
        )
        if problems:
            return _outcome(
                400, [error(f"feedback[{p.index}].{p.loc}", p.msg, VALUE) for p in problems]
            )
        return JSONResponse({"recorded": len(items)}, status_code=200)

    return router
