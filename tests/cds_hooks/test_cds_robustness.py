"""Whatever an EHR sends, a service answers with cards or a stated error, never a crash."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12plan.cds_hooks import CdsServices
from b12plan.cds_hooks.data import default_fhir_client
from b12plan.contract import parse_case
from b12plan.knowledge import load_knowledge
from tests.cds_hooks.conftest import counting_ids
from tests.cds_hooks.ehr import b12_draft, draft_bundle, hook_request, prefetch_for, scenario_case

CASE = scenario_case("gb-neuro-persisting-on-3-monthly")
PID = "p1"
FOLIC = {
    "resourceType": "MedicationRequest",
    "id": "fa",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": f"Patient/{PID}"},
    "medicationCodeableConcept": {
        "coding": [{"system": "http://www.whocc.no/atc", "code": "B03BB01"}]
    },
}
CALLS = {
    "b12plan-patient-view": hook_request("patient-view", PID, prefetch=prefetch_for(CASE, PID)),
    "b12plan-order-sign": hook_request(
        "order-sign",
        PID,
        prefetch=prefetch_for(CASE, PID),
        draftOrders=draft_bundle(
            b12_draft(PID, dose=1, unit="mg", route_snomed="78421000", every=3, period_unit="mo"),
            FOLIC,
        ),
    ),
}
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.sampled_from(["2026-01-01", "2026", "mo", "h", "Patient/x", "order-sign", "mg", "ug"]),
    st.just({}),
    st.just([]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else (enumerate(value) if isinstance(value, list) else [])
    )
    out: list[tuple[Any, ...]] = []
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@st.composite
def mutated_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    service_id = draw(st.sampled_from(sorted(CALLS)))
    body = copy.deepcopy(CALLS[service_id])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(body)))
        parent: Any = body
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(VALUES)
    return service_id, body


SERVICES = CdsServices(
    load_case=lambda pid: parse_case(CASE, load_knowledge()) if pid == PID else None,
    knowledge=load_knowledge(),
    clock=lambda: date(2026, 6, 1),
    id_factory=counting_ids(),
    fhir_client_factory=default_fhir_client,  # never reached: no mutation adds a fhirServer URL
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_calls())
def test_every_call_gets_cards_or_a_stated_error(call: tuple[str, dict[str, Any]]) -> None:
    reply = SERVICES.call(*call)
    assert reply.status in (200, 400, 404, 412)
    if reply.status == 200:
        assert reply.body is not None and isinstance(reply.body["cards"], list)
    else:
        assert reply.errors and all(e["msg"] for e in reply.errors)
