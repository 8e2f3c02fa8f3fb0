"""No request stalls the others (issue 13 item 6, ADR 0066): the mechanisms. The latencies under
a 3,000-entry import are measured by ``benchmarks/import_stall.py``, not asserted here."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
from typing import Any

import httpx
from fastapi import FastAPI, Response
from fastapi.routing import APIRoute

from b12plan.api import make_records_router
from b12plan.api.heap import frozen_startup_heap
from b12plan.fhir.api import make_router
from tests.api.conftest import Api
from tests.api.test_security import K, import_bundle
from tests.store.support import TODAY


def _visible_to_the_collector(thing: object) -> bool:
    return any(o is thing for o in gc.get_objects())


def test_the_start_up_heap_is_frozen_while_serving_and_thawed_at_shutdown() -> None:
    """Frozen objects are never walked by a full collection; thawed at shutdown, a process that
    starts and stops apps (as the tests do) leaves nothing behind."""
    built_at_start_up: list[object] = [object()]
    seen: dict[str, bool] = {}

    async def serve() -> None:
        async with frozen_startup_heap(FastAPI()):
            seen["while serving"] = _visible_to_the_collector(built_at_start_up)
        seen["after shutdown"] = _visible_to_the_collector(built_at_start_up)

    asyncio.run(serve())
    assert seen == {"while serving": False, "after shutdown": True}


def test_the_app_freezes_its_start_up_heap_when_it_starts(api: Api) -> None:
    assert gc.get_freeze_count() > 0  # the api fixture's client has run the app's start-up


def _on_the_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_an_import_runs_off_the_event_loop_while_another_request_is_answered() -> None:
    """The store of this router waits, inside the import, until another request has been
    answered: that can only happen if the import is not holding the event loop."""
    answered = threading.Event()
    storing = threading.Event()
    seen: dict[str, Any] = {}

    def load(patient_id: str) -> dict[str, Any] | None:
        return None

    def store(case: dict[str, Any]) -> str:
        seen["on the event loop"] = _on_the_event_loop()
        storing.set()
        seen["another request answered meanwhile"] = answered.wait(timeout=60)
        return "p-new"

    app = FastAPI()
    app.include_router(make_router(load, store, clock=lambda: TODAY, knowledge=K))

    async def scenario() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            importing = asyncio.create_task(client.post("/fhir", json=import_bundle()))
            while not storing.is_set() and not importing.done():
                await asyncio.sleep(0.01)
            other = await client.get("/fhir/Patient/nobody/$everything")
            answered.set()
            return (await importing).status_code, other.status_code

    assert asyncio.run(scenario()) == (201, 404)
    assert seen == {"on the event loop": False, "another request answered meanwhile": True}


def test_a_record_list_is_serialised_in_its_thread_and_reads_as_each_record_does(api: Api) -> None:
    """FastAPI would serialise a response model on the event loop (one long pydantic-core call
    for thousands of records); the list route returns its JSON made record by record in its own
    thread instead, the same JSON as each record read alone."""
    router = make_records_router(api.services.records, lambda: None, lambda a, p: b"")
    route = next(
        r
        for r in router.routes
        if isinstance(r, APIRoute)
        and r.path == "/api/v1/patients/{patient_id}/observations"
        and "GET" in r.methods
    )
    assert not inspect.iscoroutinefunction(route.endpoint)  # FastAPI runs it in the thread pool
    assert inspect.signature(route.endpoint).return_annotation is Response
    signed_in = api.clinician()
    listed = api.client.get("/api/v1/patients/demo-02/observations", headers=signed_in)
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    items = listed.json()
    assert len(items) > 1
    one_by_one = [
        api.client.get(f"/api/v1/patients/demo-02/observations/{i['id']}", headers=signed_in)
        for i in items
    ]
    assert items == [r.json() for r in one_by_one]
