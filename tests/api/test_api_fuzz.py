"""Schemathesis against the OpenAPI document: every operation under /api/v1, signed in.

Bounded and reproducible (a few derandomized examples per operation). For every generated
request: no 5xx; every 4xx is problem+json, and a 422 names each bad field; a refused request
writes nothing; and after any request every stored row still has its audit entry and every
correction chain is whole (nothing half-written).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import text

from b12plan.service import KINDS
from b12plan.store.models import RECORD_MODELS
from tests.api.conftest import Api

TABLES = [m.__tablename__ for m in RECORD_MODELS.values()]  # type: ignore[attr-defined]
FUZZED_PATHS = r"^/api/v1/(?!auth/logout)"  # signing out would end the run's session
# The record routes of every kind come from one function; what differs between kinds is the body.
# Two kinds are fuzzed on every route, the others on the routes that take a body.
EVERY_ROUTE_KINDS = ("administrations", "symptoms")
RECORD_SEGMENTS = {name.replace("_", "-") for name in KINDS}
PROBLEM = "application/problem+json"
# A wrong password is audited, by design: at sign-in, and as the current password of a change.
PASSWORD_PATHS = ("/api/v1/auth/token", "/api/v1/auth/session", "/api/v1/auth/password")


def snapshot(api: Api) -> tuple[int, ...]:
    """How many rows each table holds (clinical tables and the audit log)."""
    with api.services.db.engine.connect() as connection:
        return tuple(
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in [*TABLES, "audit_log", "patients", "users", "clinics"]
        )


def broken_history(api: Api) -> list[str]:
    """Rows without their audit entry, and corrections pointing at nothing."""
    problems: list[str] = []
    with api.services.db.engine.connect() as connection:
        for table in TABLES:
            unaudited = (
                connection.execute(
                    text(
                        f"SELECT row_id FROM {table} WHERE row_id NOT IN "
                        "(SELECT after_row_id FROM audit_log WHERE after_row_id IS NOT NULL)"
                    )
                )
                .scalars()
                .all()
            )
            problems += [f"{table} row {r} has no audit entry" for r in unaudited]
            dangling = (
                connection.execute(
                    text(
                        f"SELECT a.row_id FROM {table} a LEFT JOIN {table} b "
                        "ON a.superseded_by = b.row_id "
                        "WHERE a.superseded_by IS NOT NULL AND (b.row_id IS NULL OR b.id <> a.id "
                        "OR b.version <> a.version + 1)"
                    )
                )
                .scalars()
                .all()
            )
            problems += [f"{table} row {r} is superseded by nothing" for r in dangling]
            doubled = (
                connection.execute(
                    text(
                        f"SELECT id FROM {table} WHERE status = 'active' GROUP BY id "
                        "HAVING count(*) > 1"
                    )
                )
                .scalars()
                .all()
            )
            problems += [f"{table} record {r} has two active versions" for r in doubled]
    return problems


SETTINGS = settings(
    max_examples=3,
    derandomize=True,  # the same requests on every run
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def check_response(api: Api, case: Any) -> None:
    writes = case.method.upper() != "GET"  # reads use sessions that never commit
    before = snapshot(api) if writes else ()
    response = case.call()
    status = response.status_code
    where = f"{case.method} {case.formatted_path}"
    assert status < 500, f"{where}: {status} {response.text[:500]}"
    if status >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type == PROBLEM, f"{where}: {status} {content_type} {response.text[:300]}"
        problem = response.json()
        assert problem["status"] == status and problem["detail"], where
        if status == 422:
            assert problem["errors"], f"{where}: {problem}"
            assert all("loc" in e and e["msg"] for e in problem["errors"]), f"{where}: {problem}"
        if writes:
            after = snapshot(api)
            if case.formatted_path in PASSWORD_PATHS:
                audit = len(TABLES)
                after, before = (
                    after[:audit] + after[audit + 1 :],
                    before[:audit] + before[audit + 1 :],
                )
            assert after == before, f"a refused {where} wrote something"


def needs_fuzzing(method: str, path: str) -> bool:
    parts = path.split("/")  # "", "api", "v1", "patients", "{patient_id}", kind, ...
    if len(parts) < 6 or parts[5] not in RECORD_SEGMENTS:
        return True
    return parts[5] in EVERY_ROUTE_KINDS or method.upper() in ("POST", "PUT")


def valid_example(method: str, path: str) -> dict[str, Any] | None:
    """The documented example body of a record kind, for ``POST`` to its collection."""
    parts = path.split("/")
    if method.upper() != "POST" or len(parts) != 6 or parts[5] not in RECORD_SEGMENTS:
        return None
    config = KINDS[parts[5].replace("-", "_")].input.model_config
    extra = config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples: list[dict[str, Any]] = extra["examples"]  # type: ignore[assignment]
    return examples[0]


@pytest.mark.slow
def test_any_request_gets_a_4xx_problem_or_a_success_and_never_half_writes(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app).include(
        path_regex=FUZZED_PATHS
    )
    headers = api.admin()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    for operation in operations:
        if not needs_fuzzing(operation.method, operation.path):
            continue
        fixed = {"patient_id": "demo-02"} if "{patient_id}" in operation.path else None
        runs: list[tuple[GenerationMode, dict[str, Any]]] = [
            (GenerationMode.POSITIVE, {}),
            (GenerationMode.NEGATIVE, {}),
        ]
        example = valid_example(operation.method, operation.path)
        if example is not None:  # random codes are never in the vocabulary: also store one
            runs.append((GenerationMode.POSITIVE, {"body": example}))
        for mode, extra in runs:
            strategy = operation.as_strategy(mode, headers=headers, path_parameters=fixed, **extra)

            @SETTINGS
            @given(strategy)
            def run(case: Any) -> None:
                check_response(api, case)

            try:
                run()
            except Unsatisfiable:
                # Nothing to make invalid (e.g. no parameters): only the positive run applies.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except AssertionError as exc:
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:800]}")
        failures += [f"after {operation.label}: {p}" for p in broken_history(api)]
    assert failures == [], "\n".join(failures)
