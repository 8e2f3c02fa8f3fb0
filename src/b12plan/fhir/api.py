"""FHIR REST endpoints: ``GET /fhir/Patient/{id}/$everything`` and ``POST /fhir`` (import).

The router takes the store as two callables, so this module knows nothing of persistence; the
composition root wires them (and any auth dependencies). An import answers with the new Patient,
or with ``Prefer: return=OperationOutcome`` (FHIR RESTful API) with an OperationOutcome listing
every item left out of the record and why.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, cast

from fastapi import APIRouter, Depends, Request, Response, params
from starlette.concurrency import run_in_threadpool

from b12plan.contract import CaseError
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.fhir import Imported, case_to_bundle
from b12plan.fhir import import_bundle as read_import
from b12plan.fhir.importing import validate_bundle
from b12plan.fhir.outcome import (
    INFORMATION,
    INFORMATIONAL,
    NOT_FOUND,
    NOT_SUPPORTED,
    STRUCTURE,
    BundleError,
    error,
    http_status,
    operation_outcome,
    warning,
)

FHIR_JSON = "application/fhir+json"
log = logging.getLogger("b12plan.fhir")
IMPORT_TYPES = ("transaction", "collection")

LoadCase = Callable[[str], Case | None]
"""The store's case for a patient id; ``None`` when there is none, ``contract.CaseError`` when
the stored record is not a valid case."""
LoadCaseAs = Callable[[str, Any], Case | None]
ImportCase = Callable[[Case], str]
ImportCaseAs = Callable[[Case, Any], str]


async def _nobody() -> None:
    """The principal when the composition root gives none."""
    return None


def fhir_response(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers or None,
    )


def outcome_response(errors: Sequence[dict[str, str]]) -> Response:
    """The one place an error list becomes an HTTP response."""
    return fhir_response(operation_outcome(errors), http_status(errors))


def import_posted_bundle(
    body: bytes, as_of: date, knowledge: Knowledge, default_jurisdiction: str
) -> tuple[Imported, int] | list[dict[str, str]]:
    """A POSTed Bundle as a ``Case`` with its warnings and its entry count, or the errors."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [error("", f"invalid JSON: {exc}", STRUCTURE)]
    try:
        bundle = validate_bundle(data)
        if bundle["type"] not in IMPORT_TYPES:
            return [
                error(
                    "type",
                    f"POST /fhir takes a {' or '.join(IMPORT_TYPES)} Bundle,"
                    f" got {bundle['type']!r}",
                    NOT_SUPPORTED,
                )
            ]
        imported = read_import(
            bundle,
            as_of=as_of,
            knowledge=knowledge,
            default_jurisdiction=default_jurisdiction,
            validated=True,
        )
    except BundleError as exc:
        return exc.errors
    return imported, len(bundle.get("entry", []))


def make_router(
    load_case: LoadCase | LoadCaseAs,
    import_case: ImportCase | ImportCaseAs,
    *,
    clock: Callable[[], date],
    knowledge: Knowledge,
    dependencies: Sequence[params.Depends] | None = None,
    principal: Callable[..., Any] | None = None,
    default_jurisdiction: str = "GB",
) -> APIRouter:
    """The FHIR routes over a store given as ``load_case(id) -> Case`` and
    ``import_case(case) -> id`` (a ``Case`` both ways: JSON only in the HTTP bodies).

    ``clock`` gives the ``as_of`` an imported record is read on (records dated later are kept:
    the contract leaves them out of evaluations until their date). ``dependencies`` guard every
    route. ``principal``, a FastAPI dependency giving the signed-in user, makes the store
    callables receive that user as a second argument (``load_case(id, who)``,
    ``import_case(case, who)``) so the store can apply its own access rules.
    ``default_jurisdiction`` applies to imported patients whose record does not say (no b12plan
    extension, no address country).
    """
    k = knowledge
    router = APIRouter(tags=["FHIR"], dependencies=list(dependencies or ()))
    who_dependency = principal or _nobody

    def load(patient_id: str, who: Any) -> Case | None:
        if principal is None:
            return cast(LoadCase, load_case)(patient_id)
        return cast(LoadCaseAs, load_case)(patient_id, who)

    def store(case: Case, who: Any) -> str:
        if principal is None:
            return cast(ImportCase, import_case)(case)
        return cast(ImportCaseAs, import_case)(case, who)

    @router.get(
        "/fhir/Patient/{patient_id}/$everything",
        summary="The patient's record as a FHIR R4 Bundle",
        response_class=Response,
        responses={200: {"content": {FHIR_JSON: {}}}, 404: {"content": {FHIR_JSON: {}}}},
    )
    def everything(patient_id: str, who: Any = Depends(who_dependency)) -> Response:
        try:
            case = load(patient_id, who)
            if case is None:
                return outcome_response([error("", f"no patient {patient_id!r}", NOT_FOUND)])
            bundle = case_to_bundle(case, knowledge=k, patient_resource_id=patient_id)
        except CaseError as exc:  # a stored record the contract refuses: report, never crash
            return outcome_response(
                [error(e["loc"], e["msg"], "business-rule") for e in exc.errors]
            )
        bundle["type"] = "searchset"
        for entry in bundle["entry"]:
            entry["search"] = {"mode": "match"}
        return fhir_response(bundle)

    @router.post(
        "/fhir",
        summary="Import a transaction or collection Bundle as a new patient",
        status_code=201,
        response_class=Response,
        responses={
            201: {"content": {FHIR_JSON: {}}},
            400: {"content": {FHIR_JSON: {}}},
            422: {"content": {FHIR_JSON: {}}},
        },
    )
    async def import_bundle(request: Request, who: Any = Depends(who_dependency)) -> Response:
        # Parsing, mapping and storing a large Bundle is seconds of CPU: in the thread pool, so
        # the event loop keeps serving every other request meanwhile (issue 13).
        prefer = request.headers.get("prefer", "").replace(" ", "").lower()
        return await run_in_threadpool(import_body, await request.body(), prefer, who)

    def import_body(body: bytes, prefer: str, who: Any) -> Response:
        started = time.perf_counter()
        read = import_posted_bundle(body, clock(), k, default_jurisdiction)
        if isinstance(read, list):
            return outcome_response(read)
        imported, entries = read
        case = imported.case
        new_id = store(case, who)
        seconds = time.perf_counter() - started
        rate = entries / seconds if seconds > 0 else 0.0
        log.info(
            "imported a Bundle of %d entries in %.2f s (%.0f entries/s)", entries, seconds, rate
        )
        throughput = {"X-Import-Throughput": f"entries={entries}; per_second={rate:.0f}"}
        if "return=operationoutcome" in prefer:
            created = warning("", f"created Patient/{new_id}", INFORMATIONAL, INFORMATION)
            return fhir_response(
                operation_outcome([created, *imported.warnings]),
                201,
                Location=f"Patient/{new_id}",
                **throughput,
            )
        patient: dict[str, Any] = {"resourceType": "Patient", "id": new_id}
        if case.patient.sex is not None:
            patient["gender"] = case.patient.sex
        if case.patient.birth_date is not None:
            patient["birthDate"] = case.patient.birth_date.isoformat()
        return fhir_response(patient, 201, Location=f"Patient/{new_id}", **throughput)

    return router
