"""No request stalls the others (issue 13 item 6, ADR 0069): the mechanisms. The latencies under
a 3,000-entry import are measured by ``benchmarks/import_stall.py``, not asserted here."""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from fastapi.routing import APIRoute

from b12plan.api import make_records_router
from b12plan.api.serving import SWITCH_INTERVAL_SECONDS, served
from b12plan.fhir.api import make_router
from tests.api.conftest import Api
from tests.api.test_security import K, import_bundle
from tests.store.support import TODAY


def _visible_to_the_collector(thing: object) -> bool:
    return any(o is thing for o in gc.get_objects())


def test_while_serving_the_start_up_heap_is_frozen_and_the_gil_changes_hands_each_ms() -> None:
    """Frozen objects are never walked by a full collection, and the event loop waits at most
    1 ms for the GIL; at shutdown both are undone, so a process that starts and stops apps (as
    the tests do) is left as it was."""
    built_at_start_up: list[object] = [object()]
    before = sys.getswitchinterval()
    seen: dict[str, object] = {}

    async def serve() -> None:
        async with served(FastAPI()):
            seen["heap walked while serving"] = _visible_to_the_collector(built_at_start_up)
            seen["switch interval while serving"] = sys.getswitchinterval()
        seen["heap walked after shutdown"] = _visible_to_the_collector(built_at_start_up)
        seen["switch interval after shutdown"] = sys.getswitchinterval()

    asyncio.run(serve())
    assert seen == {
        "heap walked while serving": False,
        "switch interval while serving": pytest.approx(SWITCH_INTERVAL_SECONDS),
        "heap walked after shutdown": True,
        "switch interval after shutdown": pytest.approx(before),
    }


def test_the_app_is_served_so_when_it_starts(api: Api) -> None:
    assert gc.get_freeze_count() > 0  # the api fixture's client has run the app's start-up
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS)


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

    def store(case: object) -> str:
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
