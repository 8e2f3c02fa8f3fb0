"""``B12PLAN_DEFAULT_JURISDICTION`` reaches FHIR imports (``POST /fhir`` and CDS Hooks records)
through the composition root."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from b12plan.app import Settings, SettingsError, build_services, create_app
from b12plan.service.demo import seed_demo
from tests.cds_hooks.ehr import hook_request, prefetch_for, scenario_case
from tests.store.support import FAST_HASH, NOW, FixedClock, sqlite_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx; not about this code
    from fastapi.testclient import TestClient

SYNTHEA = Path(__file__).parents[1] / "fhir" / "ehr" / "synthea-deceased-boston.json"


def _no_address_bundle() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(SYNTHEA.read_text(encoding="utf-8"))
    del bundle["entry"][0]["resource"]["address"]
    return bundle


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "GB"), ({"B12PLAN_DEFAULT_JURISDICTION": " us "}, "US")],
    ids=["unset", "lower-case"],
)
def test_the_setting_is_read_from_the_environment(env: dict[str, str], expected: str) -> None:
    assert Settings.from_env(env).default_jurisdiction == expected


def test_a_jurisdiction_without_protocols_stops_start_up(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as url, pytest.raises(SettingsError) as caught:
        build_services(Settings(database_url=url, default_jurisdiction="FR"))
    assert str(caught.value).startswith("B12PLAN_DEFAULT_JURISDICTION: 'FR' has no protocols")


@pytest.mark.parametrize("default", ["US", "GB"])
def test_an_imported_record_without_a_country_gets_the_configured_default(
    tmp_path: Path, default: str
) -> None:
    with sqlite_database(tmp_path) as url:
        services = build_services(
            Settings(database_url=url, default_jurisdiction=default),
            clock=FixedClock(NOW),
            password_hash=FAST_HASH,
        )
        seed_demo(services.records, services.auth, today=NOW.date())
        with TestClient(create_app(services=services)) as client:
            token = client.post(
                "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            created = client.post("/fhir", json=_no_address_bundle(), headers=headers)
            assert created.status_code == 201, created.text
            new_id = created.headers["location"].removeprefix("Patient/")
            back = client.get(f"/fhir/Patient/{new_id}/$everything", headers=headers).json()
        services.db.dispose()
    patient = next(
        e["resource"] for e in back["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    (jurisdiction,) = [
        x["valueCode"] for x in patient["extension"] if x["url"].endswith("/jurisdiction")
    ]
    assert jurisdiction == default


@pytest.mark.parametrize("default", ["US", "GB"])
def test_a_cds_hooks_record_without_a_country_gets_the_configured_default(
    tmp_path: Path, default: str
) -> None:
    """The EHR's record in a CDS Hooks prefetch is a FHIR import too: the same default applies
    (here visible in the protocol an untreated neurological patient's card names)."""
    case = scenario_case("gb-neuro-untreated")
    prefetch = prefetch_for(case, "ehr-42")
    patient = prefetch["patient"]
    patient["extension"] = [e for e in patient["extension"] if "jurisdiction" not in e["url"]]
    body = hook_request("patient-view", "ehr-42", prefetch=prefetch)
    with sqlite_database(tmp_path) as url:
        services = build_services(
            Settings(database_url=url, default_jurisdiction=default),
            clock=FixedClock(NOW),
            password_hash=FAST_HASH,
        )
        seed_demo(services.records, services.auth, today=NOW.date())
        with TestClient(create_app(services=services)) as client:
            token = client.post(
                "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
            ).json()["access_token"]
            response = client.post(
                "/cds-services/b12plan-patient-view",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
        services.db.dispose()
    assert response.status_code == 200, response.text
    (card,) = [
        c
        for c in response.json()["cards"]
        if c["source"].get("topic", {}).get("code") == "NEURO_UNDERTREATED"
    ]
    expected = {"US": "us-cyanocobalamin-1000", "GB": "gb-hydroxocobalamin-neuro"}[default]
    assert expected in card["detail"]
