"""A CDS Hooks app per test (fixed clock, counting ids) and the spec's JSON Schema."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from b12plan.app import Services, Settings, build_services, create_app
from b12plan.cds_hooks.api import make_router
from b12plan.cds_hooks.trust import TrustedClient
from b12plan.contract import parse_case
from b12plan.core.model import Case
from b12plan.knowledge import load_knowledge
from b12plan.service import FixedClock
from tests.store.support import FAST_HASH, NOW

SCHEMA = json.loads((Path(__file__).parent / "cds-hooks-2.0.schema.json").read_text("utf-8"))
_VALIDATORS = {
    name: jsonschema_rs.validator_for({**SCHEMA, "$ref": f"#/$defs/{name}"}, validate_formats=True)
    for name in ("discovery", "response", "card")
}


def assert_valid(name: str, document: Any) -> None:
    """Fails listing every way ``document`` departs from the CDS Hooks 2.0 shape ``name``."""
    problems = [str(e).splitlines()[0] for e in _VALIDATORS[name].iter_errors(document)]
    assert not problems, problems


PUBLIC = "https://b12.example.org"
"""The public base URL EHRs are given (``B12PLAN_CDS_PUBLIC_URL``); the test client's own host
is ``testserver``, as an app behind a proxy sees another host than the one called."""


def make_app(
    db_url: str, clients: tuple[TrustedClient, ...], now: datetime = NOW
) -> tuple[TestClient, Services]:
    """The whole b12plan app over ``db_url``, trusting ``clients``, with its clock at ``now``."""
    settings = Settings(database_url=db_url, cds_clients=clients, cds_public_url=PUBLIC)
    services = build_services(settings, clock=FixedClock(now), password_hash=FAST_HASH)
    return TestClient(create_app(services=services)), services


def counting_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


class Hooks:
    """A client for the CDS routes plus what the store fallback was asked."""

    def __init__(
        self,
        as_of: date,
        cases: dict[str, dict[str, Any]] | None = None,
        fhir_client_factory: Callable[[str, str | None], httpx.Client] | None = None,
        fhir_servers: list[str] | None = None,
    ) -> None:
        self.cases = cases or {}
        self.looked_up: list[str] = []
        app = FastAPI()
        app.include_router(
            make_router(
                self._load,
                knowledge=load_knowledge(),
                clock=lambda: as_of,
                id_factory=counting_ids(),
                fhir_client_factory=fhir_client_factory,
                fhir_servers=fhir_servers,
            )
        )
        self.client = TestClient(app)

    def _load(self, patient_id: str) -> Case | None:
        """The store's answer: its ``Case``, parsed from the document as the real store does."""
        self.looked_up.append(patient_id)
        document = self.cases.get(patient_id)
        return None if document is None else parse_case(document, load_knowledge())

    def call(self, service_id: str, body: Any) -> httpx.Response:
        return self.client.post(f"/cds-services/{service_id}", json=body)

    def cards(self, service_id: str, body: Any) -> list[dict[str, Any]]:
        response = self.call(service_id, body)
        assert response.status_code == 200, response.text
        assert_valid("response", response.json())
        cards: list[dict[str, Any]] = response.json()["cards"]
        return cards


@pytest.fixture
def hooks_at() -> Iterator[Callable[..., Hooks]]:
    yield Hooks


def codes(cards: list[dict[str, Any]]) -> list[str | None]:
    """The finding code of each card (None for cards that are not findings)."""
    return [c["source"].get("topic", {}).get("code") for c in cards]
