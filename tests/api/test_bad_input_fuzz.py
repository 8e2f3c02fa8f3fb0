"""Fuzzing the bad inputs of issue 13 at every JSON entry point: never a 5xx, never a traceback.

Hypothesis (derandomized, bounded) sends nested-too-deep JSON, duplicate keys, bodies over the
limit, wrong content types, non-UTF-8 bytes and dates at the ends of the calendar to the record
routes, /assess, /fhir and CDS Hooks, signed in. Each answer must be a success or a 4xx in the
route's error shape (problem+json, or an OperationOutcome on /fhir and /cds-services).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api

POSTS = (
    "/api/v1/patients/demo-02/symptoms",
    "/api/v1/patients/demo-02/observations",
    "/api/v1/assess",
    "/fhir",
    "/cds-services/b12plan-patient-view",
    "/cds-services/b12plan-order-sign",
)
GETS = (
    "/api/v1/patients/demo-02/assessment?as_of={day}",
    "/api/v1/worklist?as_of={day}",
)
CONTENT_TYPES = (
    "application/json",
    "application/fhir+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
)


def nested(depth: int, opener: str) -> str:
    closer = "]" if opener == "[" else "}"
    inner = '"x"' if opener == "[" else ""
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return opener * depth + inner + closer * depth


bodies = st.one_of(
    st.builds(nested, st.integers(1, 60_000), st.sampled_from("[{")),
    st.builds(
        lambda key, a, b: (
            f'{{"{key}": {json.dumps(a)}, "date": "2026-05-01", "{key}": {json.dumps(b)}}}'
        ),
        st.sampled_from(["code", "date", "value", "hook", "resourceType", "status"]),
        st.integers(),
        st.text(max_size=5),
    ),
    st.builds(lambda n: '{"pad": "' + "x" * n + '"}', st.sampled_from([10, 999_000, 1_200_000])),
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    st.builds(
        lambda day: json.dumps({"date": day, "code": "fatigue", "status": "present"}),
        st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "1e308", "+20000-01-01"]),
    ),
)
days = st.sampled_from(
    ["0001-01-01", "1899-12-31", "2999-12-31", "3000-01-01", "9998-12-31", "9999-12-31", "x"]
)


def check(response: Any, path: str) -> None:
    assert response.status_code < 500, f"{path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        media = response.headers.get("content-type", "")
        if path.startswith(("/fhir", "/cds-services")):
            assert response.json()["resourceType"] == "OperationOutcome", response.text[:300]
        else:
            assert media.startswith("application/problem+json"), (path, media)
            assert response.json()["status"] == response.status_code


SETTINGS = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
def test_bad_bodies_at_every_json_route_are_4xx_in_the_routes_shape(api: Api) -> None:
    headers = api.clinician()

    @SETTINGS
    @given(st.sampled_from(POSTS), bodies, st.sampled_from(CONTENT_TYPES))
    def run(path: str, body: str, content_type: str) -> None:
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        check(api.client.post(path, content=body.encode("utf-8"), headers=sent), path)

    run()


@pytest.mark.slow
def test_evaluation_dates_at_the_ends_of_the_calendar_are_4xx(api: Api) -> None:
    headers = api.admin()

    @SETTINGS
    @given(st.sampled_from(GETS), days)
    def run(template: str, day: str) -> None:
        path = template.format(day=day)
        check(api.client.get(path, headers=headers), path)

    run()
