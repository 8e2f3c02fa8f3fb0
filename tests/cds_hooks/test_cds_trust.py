"""An EHR that b12plan trusts calls with a signed JWT; anyone else gets 401 with the reason.

The whole app (``create_app``) over a migrated SQLite store, a fixed service clock (the tokens are
minted for 2026-06-01, not for the machine's date: the clock is the service's), real EC P-384 and
RSA key pairs made here, and the EHR's JWK Set served over HTTP on 127.0.0.1 by a real server.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from b12plan.app import Services, Settings, SettingsError
from b12plan.cds_hooks.trust import TrustedClient
from b12plan.service.demo import DEMO_CLINIC, seed_demo
from b12plan.store import models
from tests.cds_hooks.conftest import PUBLIC, make_app
from tests.cds_hooks.ehr import b12_draft, draft_bundle, hook_request, prefetch_for, scenario_case
from tests.cds_hooks.signing import (
    Ehr,
    JwksServer,
    SigningKey,
    hmac_signed,
    jwks,
    jwks_server,
    unsigned,
    with_payload,
)
from tests.store.support import NOW, TODAY, sqlite_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DISCOVERY = f"{PUBLIC}/cds-services"
PATIENT_VIEW = f"{PUBLIC}/cds-services/b12plan-patient-view"
ORDER_SIGN = f"{PUBLIC}/cds-services/b12plan-order-sign"
T = int(NOW.timestamp())
CASE = scenario_case("gb-neuro-persisting-on-3-monthly")
PID = "ehr-patient-7"


@dataclass
class World:
    client: TestClient
    services: Services
    server: JwksServer
    ehr: Ehr  # EC P-384, keys from its JWK Set URL, may name it as jku
    checker: Ehr  # RSA, inline JWK Set, sub and tenant restricted
    clients: tuple[TrustedClient, ...]
    db_url: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ec_key, rsa_key = SigningKey("EC", "ehr-ec-2026"), SigningKey("RSA", "checker-rsa-1")
    with jwks_server() as server, sqlite_database(tmp_path_factory.mktemp("trust")) as url:
        jwks_url = server.serve("/ehr/jwks.json", jwks(ec_key))
        clients = (
            TrustedClient(
                iss="https://ehr.example.org",
                name="Example EHR",
                jwks_url=jwks_url,
                jku=(jwks_url,),
                clinic=DEMO_CLINIC.id,
            ),
            TrustedClient(
                iss="https://checker.example.net",
                jwks=jwks(rsa_key),
                sub=("cds-checker",),
                tenant=("tenant-1",),
            ),
        )
        client, services = make_app(url, clients)
        seed_demo(services.records, services.auth, today=TODAY)
        yield World(
            client=client,
            services=services,
            server=server,
            ehr=Ehr("https://ehr.example.org", ec_key, T, jku=jwks_url),
            checker=Ehr(
                "https://checker.example.net", rsa_key, T, sub="cds-checker", tenant="tenant-1"
            ),
            clients=clients,
            db_url=url,
        )
        services.db.dispose()


def patient_view(patient_id: str = PID, **extra: Any) -> dict[str, Any]:
    return hook_request(
        "patient-view", patient_id, prefetch=prefetch_for(CASE, patient_id), **extra
    )


def order_sign() -> dict[str, Any]:
    draft = b12_draft(PID, dose=1, unit="mg", route_snomed="78421000", every=3, period_unit="mo")
    return hook_request(
        "order-sign", PID, prefetch=prefetch_for(CASE, PID), draftOrders=draft_bundle(draft)
    )


def refused(response: Any, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"], response.json()["detail"]


# --- the trusted EHR -------------------------------------------------------------------------


def test_a_trusted_ehr_calls_discovery_with_an_es384_jwt_from_its_jwks_url(world: World) -> None:
    response = world.client.get("/cds-services", headers=world.ehr.headers(DISCOVERY))
    assert response.status_code == 200, response.text
    assert {s["id"] for s in response.json()["services"]} == {
        "b12plan-patient-view",
        "b12plan-order-sign",
    }
    assert world.server.hits["/ehr/jwks.json"] >= 1


def test_an_rs384_checker_with_an_inline_jwks_gets_cards(world: World) -> None:
    response = world.client.post(
        "/cds-services/b12plan-patient-view",
        json=patient_view(),
        headers=world.checker.headers(PATIENT_VIEW),
    )
    assert response.status_code == 200, response.text
    assert response.json()["cards"]


def test_an_independent_checker_runs_discovery_patient_view_and_order_sign_with_no_account(
    world: World,
) -> None:
    """What a CDS Hooks conformance checker does: every call signed, no b12plan sign-in."""
    checker = world.checker
    discovery = world.client.get("/cds-services", headers=checker.headers(DISCOVERY))
    assert discovery.status_code == 200, discovery.text
    for service in discovery.json()["services"]:
        url = f"{PUBLIC}/cds-services/{service['id']}"
        body = order_sign() if service["hook"] == "order-sign" else patient_view()
        response = world.client.post(
            f"/cds-services/{service['id']}", json=body, headers=checker.headers(url)
        )
        assert response.status_code == 200, (service["id"], response.text)
        assert isinstance(response.json()["cards"], list)
    assert "set-cookie" not in discovery.headers


def test_a_client_with_a_clinic_reads_that_clinics_store_and_one_without_reads_nothing(
    world: World,
) -> None:
    with world.services.db.reading() as session:
        demo_patient = session.scalars(
            select(models.Patient.id).where(models.Patient.clinic_id == DEMO_CLINIC.id)
        ).first()
    assert demo_patient is not None
    body = hook_request("patient-view", demo_patient)
    with_clinic = world.client.post(
        "/cds-services/b12plan-patient-view", json=body, headers=world.ehr.headers(PATIENT_VIEW)
    )
    assert with_clinic.status_code == 200, with_clinic.text
    without = world.client.post(
        "/cds-services/b12plan-patient-view",
        json=body,
        headers=world.checker.headers(PATIENT_VIEW),
    )
    assert without.status_code == 412, without.text


def test_b12plans_own_signed_in_users_may_still_call(world: World) -> None:
    token = world.client.post(
        "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
    ).json()["access_token"]
    response = world.client.post(
        "/cds-services/b12plan-patient-view",
        json=patient_view(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text


def test_a_signed_in_browser_session_may_read_discovery(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as url:
        app, services = make_app(url, ())
        try:
            seed_demo(services.records, services.auth, today=TODAY)
            signed_in = app.post(
                "/api/v1/auth/session",
                data={"username": "dr.demo", "password": "demo-clinician"},
                headers={"Origin": str(app.base_url).rstrip("/")},
            )
            assert signed_in.status_code == 200, signed_in.text
            cookie = signed_in.headers["set-cookie"].split(";")[0]  # sent as is, Secure or not
            app.cookies.clear()
            assert app.get("/cds-services").status_code == 401
            assert app.get("/cds-services", headers={"Cookie": cookie}).status_code == 200
        finally:
            services.db.dispose()


def test_no_credentials_or_a_made_up_token_is_refused(world: World) -> None:
    refused(world.client.get("/cds-services"), "sign in first")
    refused(
        world.client.get("/cds-services", headers={"Authorization": "Bearer not-a-token"}),
        "unknown",
    )
    refused(
        world.client.get("/cds-services", headers={"Authorization": "Bearer a.b.c"}),
        "not a readable JWT",
    )


# --- attacks -----------------------------------------------------------------------------------


def test_a_token_for_another_url_is_refused(world: World) -> None:
    for aud in (PATIENT_VIEW, "https://other-service.example/cds-services", f"{DISCOVERY}/"):
        refused(
            world.client.get("/cds-services", headers=world.ehr.headers(aud)),
            f"aud must be the URL called: {DISCOVERY}",
        )


def test_the_aud_is_the_public_url_whatever_host_the_request_claims(world: World) -> None:
    """Behind a proxy the app sees another host; a client-sent Host must not pick the aud (and a
    forwarded host not on the allow-list is refused by the request guard before that)."""
    forwarded = world.client.get(
        "/cds-services",
        headers={"X-Forwarded-Host": "other-service.example", **world.ehr.headers(DISCOVERY)},
    )
    assert forwarded.status_code == 403, forwarded.text
    spoofed = {"Host": "other-service.example"}
    token = world.ehr.token("http://other-service.example/cds-services")
    refused(
        world.client.get("/cds-services", headers={**spoofed, "Authorization": f"Bearer {token}"}),
        "aud must be the URL called",
    )
    ok = world.client.get("/cds-services", headers={**spoofed, **world.ehr.headers(DISCOVERY)})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": T - 120, "iat": T - 420}, "expired"),
        ({"iat": T + 600, "exp": T + 900}, "issued in the future"),
        ({"nbf": T + 600}, "not valid yet"),
        ({"exp": T + 86400}, "lives too long"),
        ({"jti": None}, "no jti claim"),
        ({"exp": None}, "no exp claim"),
        ({"iat": "yesterday"}, "iat must be a number"),
        ({"jti": "x" * 300}, "jti must be a string"),
    ],
)
def test_times_and_required_claims_are_checked_on_the_service_clock(
    world: World, claims: dict[str, Any], reason: str
) -> None:
    refused(
        world.client.get("/cds-services", headers=world.ehr.headers(DISCOVERY, **claims)), reason
    )


def test_a_little_clock_skew_is_tolerated(world: World) -> None:
    headers = world.ehr.headers(DISCOVERY, iat=T + 30, exp=T + 330)
    assert world.client.get("/cds-services", headers=headers).status_code == 200
    headers = world.ehr.headers(DISCOVERY, iat=T - 330, exp=T - 30)
    assert world.client.get("/cds-services", headers=headers).status_code == 200


def test_a_replayed_token_is_refused(world: World) -> None:
    headers = world.ehr.headers(DISCOVERY)
    assert world.client.get("/cds-services", headers=headers).status_code == 200
    refused(world.client.get("/cds-services", headers=headers), "already used (jti)")


def test_a_token_replayed_to_another_worker_is_refused(world: World) -> None:
    """The jti store is the database: a second app over it (another worker) knows the token."""
    other, services = make_app(world.db_url, world.clients)
    try:
        headers = world.ehr.headers(DISCOVERY)
        assert world.client.get("/cds-services", headers=headers).status_code == 200
        refused(other.get("/cds-services", headers=headers), "already used")
    finally:
        services.db.dispose()


def test_expired_token_ids_are_purged(world: World) -> None:
    world.client.get("/cds-services", headers=world.ehr.headers(DISCOVERY))
    later = NOW + dt.timedelta(hours=1)
    other, services = make_app(world.db_url, world.clients, now=later)
    try:
        ehr = Ehr(world.ehr.iss, world.ehr.key, int(later.timestamp()), jku=world.ehr.jku)
        assert other.get("/cds-services", headers=ehr.headers(DISCOVERY)).status_code == 200
        with services.db.reading() as session:
            left = session.scalar(select(func.count()).select_from(models.CdsTokenSeen))
            oldest = session.scalar(select(func.min(models.CdsTokenSeen.expires_at)))
        assert left == 1 and oldest is not None and oldest > later
    finally:
        services.db.dispose()


def test_alg_none_is_refused(world: World) -> None:
    token = unsigned(
        {"alg": "none", "typ": "JWT", "kid": world.ehr.key.kid},
        {"iss": world.ehr.iss, "aud": DISCOVERY, "iat": T, "exp": T + 300, "jti": "n-1"},
    )
    refused(
        world.client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}),
        "alg 'none' is not accepted",
    )


def test_hs384_keyed_with_the_public_key_is_refused(world: World) -> None:
    claims = {"iss": world.ehr.iss, "aud": DISCOVERY, "iat": T, "exp": T + 300, "jti": "h-1"}
    for secret in (world.ehr.key.public_pem(), json.dumps(world.ehr.key.public_jwk()).encode()):
        token = hmac_signed(
            {"alg": "HS384", "typ": "JWT", "kid": world.ehr.key.kid}, claims, secret
        )
        refused(
            world.client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}),
            "alg 'HS384' is not accepted",
        )


def test_an_unknown_issuer_is_refused_even_with_a_valid_signature(world: World) -> None:
    stranger = Ehr("https://stranger.example.com", world.ehr.key, T, jku=world.ehr.jku)
    refused(
        world.client.get("/cds-services", headers=stranger.headers(DISCOVERY)),
        "'https://stranger.example.com' is not a trusted CDS client",
    )


def test_a_jku_not_on_the_allow_list_is_never_fetched(world: World) -> None:
    """The attacker's own key, served at their own URL: b12plan must not even ask for it."""
    attacker = SigningKey("EC", world.ehr.key.kid)
    evil = world.server.serve("/attacker/jwks.json", jwks(attacker))
    forged = Ehr(world.ehr.iss, attacker, T, jku=evil)
    refused(
        world.client.get("/cds-services", headers=forged.headers(DISCOVERY)),
        "is not on the allow-list",
    )
    assert world.server.hits["/attacker/jwks.json"] == 0


def test_a_tampered_payload_is_refused(world: World) -> None:
    token = world.ehr.token(DISCOVERY)
    forged = with_payload(
        token,
        {
            "iss": world.ehr.iss,
            "aud": DISCOVERY,
            "iat": T,
            "exp": T + 300,
            "jti": "t-1",
            "sub": "admin",
        },
    )
    refused(
        world.client.get("/cds-services", headers={"Authorization": f"Bearer {forged}"}),
        "signature does not verify",
    )


def test_a_key_of_the_right_kid_but_another_pair_does_not_verify(world: World) -> None:
    impostor = Ehr(world.ehr.iss, SigningKey("EC", world.ehr.key.kid), T, jku=world.ehr.jku)
    refused(
        world.client.get("/cds-services", headers=impostor.headers(DISCOVERY)),
        "signature does not verify",
    )


def test_a_wrong_kid_is_refused(world: World) -> None:
    refused(
        world.client.get(
            "/cds-services", headers=world.ehr.headers(DISCOVERY, header={"kid": "nope"})
        ),
        "no key with kid 'nope'",
    )
    refused(
        world.client.get(
            "/cds-services",
            headers=world.checker.headers(DISCOVERY, header={"kid": world.ehr.key.kid}),
        ),
        f"no key with kid '{world.ehr.key.kid}'",
    )


def test_an_alg_the_client_is_not_allowed_is_refused(world: World) -> None:
    ehr256 = Ehr(world.ehr.iss, SigningKey("EC", world.ehr.key.kid), T)
    token = jwt_es256(ehr256)
    refused(
        world.client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}),
        "alg ES256 is not allowed",
    )


def jwt_es256(ehr: Ehr) -> str:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    claims = {"iss": ehr.iss, "aud": DISCOVERY, "iat": T, "exp": T + 300, "jti": "es256"}
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": ehr.key.kid})


def test_sub_and_tenant_must_be_the_registered_ones(world: World) -> None:
    refused(
        world.client.get(
            "/cds-services", headers=world.checker.headers(DISCOVERY, sub="someone-else")
        ),
        "sub 'someone-else' is not allowed",
    )
    refused(
        world.client.get("/cds-services", headers=world.checker.headers(DISCOVERY, tenant=None)),
        "tenant None is not allowed",
    )


def test_feedback_calls_are_verified_too(world: World) -> None:
    url = f"{PATIENT_VIEW}/feedback"
    body = {
        "feedback": [
            {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-06-01T09:00:00Z"}
        ]
    }
    refused(
        world.client.post(
            "/cds-services/b12plan-patient-view/feedback",
            json=body,
            headers=world.ehr.headers(PATIENT_VIEW),
        ),
        "aud must be the URL called",
    )
    response = world.client.post(
        "/cds-services/b12plan-patient-view/feedback", json=body, headers=world.ehr.headers(url)
    )
    assert response.status_code == 400  # signed in; the card is unknown


# --- the JWK Set over HTTP --------------------------------------------------------------------


def test_the_jwks_is_cached_and_refetched_once_for_a_new_kid(world: World) -> None:
    rotated = SigningKey("EC", "ehr-ec-2027")
    path = "/rotating/jwks.json"
    url = world.server.serve(path, jwks(world.ehr.key))
    client = TrustedClient(iss="https://rotating.example.org", jwks_url=url)
    app, services = make_app(world.db_url, (client,))
    try:
        ehr = Ehr(client.iss, world.ehr.key, T)
        for _ in range(3):
            assert app.get("/cds-services", headers=ehr.headers(DISCOVERY)).status_code == 200
        assert world.server.hits[path] == 1
        world.server.serve(path, jwks(world.ehr.key, rotated))  # the EHR rotates its keys
        new = Ehr(client.iss, rotated, T)
        assert app.get("/cds-services", headers=new.headers(DISCOVERY)).status_code == 200
        assert world.server.hits[path] == 2
        unknown = Ehr(client.iss, SigningKey("EC", "never-published"), T)
        for _ in range(3):
            refused(app.get("/cds-services", headers=unknown.headers(DISCOVERY)), "no key")
        assert world.server.hits[path] == 2  # unknown kids cannot make b12plan hammer the EHR
    finally:
        services.db.dispose()


def test_an_oversized_or_missing_jwks_is_refused(world: World) -> None:
    big = world.server.serve("/big/jwks.json", b'{"keys": [' + b" " * 100_000 + b"]}")
    gone = world.server.base + "/gone/jwks.json"
    for url, reason in ((big, "larger than"), (gone, "answered HTTP 404")):
        client = TrustedClient(iss="https://careless.example.org", jwks_url=url)
        app, services = make_app(world.db_url, (client,))
        try:
            ehr = Ehr(client.iss, world.ehr.key, T)
            refused(app.get("/cds-services", headers=ehr.headers(DISCOVERY)), reason)
        finally:
            services.db.dispose()


# --- settings ----------------------------------------------------------------------------------


def test_the_trusted_clients_come_from_a_toml_or_json_file(tmp_path: Path) -> None:
    toml = tmp_path / "clients.toml"
    toml.write_text(
        '[[client]]\niss = "https://ehr.example.org"\n'
        'jwks_url = "https://ehr.example.org/jwks.json"\nsub = ["b12plan"]\n',
        encoding="utf-8",
    )
    settings = Settings.from_env(
        {"B12PLAN_CDS_CLIENTS": str(toml), "B12PLAN_CDS_PUBLIC_URL": PUBLIC}
    )
    assert [c.iss for c in settings.cds_clients] == ["https://ehr.example.org"]
    assert settings.cds_clients[0].algorithms == ("ES384", "RS384")
    data = {"client": [{"iss": "x", "jwks": jwks(SigningKey("EC", "k"))}]}
    js = tmp_path / "clients.json"
    js.write_text(json.dumps(data), encoding="utf-8")
    settings = Settings.from_env({"B12PLAN_CDS_CLIENTS": str(js), "B12PLAN_CDS_PUBLIC_URL": PUBLIC})
    assert settings.cds_clients[0].jwks is not None


@pytest.mark.parametrize(
    ("client", "env", "message"),
    [
        ({"iss": "x", "jwks_url": "https://e/j"}, {}, "B12PLAN_CDS_PUBLIC_URL: required"),
        ({"iss": "x"}, None, "give the client's keys"),
        ({"iss": "x", "jwks_url": "http://ehr.example.org/j"}, None, "must be an https URL"),
        ({"iss": "x", "jwks_url": "https://e/j", "algorithms": ["HS256"]}, None, "HS256"),
        ({"iss": "x", "jwks_url": "https://e/j", "algorithms": ["none"]}, None, "none"),
        ({"iss": "x", "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, None, "secret"),
        ({"iss": "x", "jwks_url": "https://e/j", "colour": "red"}, None, "colour"),
    ],
)
def test_a_bad_clients_file_is_a_settings_error_naming_the_field(
    tmp_path: Path, client: dict[str, Any], env: dict[str, str] | None, message: str
) -> None:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"client": [client]}), encoding="utf-8")
    environment = {"B12PLAN_CDS_CLIENTS": str(path)}
    environment.update({"B12PLAN_CDS_PUBLIC_URL": PUBLIC} if env is None else env)
    with pytest.raises(SettingsError, match="B12PLAN_CDS_") as raised:
        Settings.from_env(environment)
    assert message in str(raised.value)


def test_a_jwt_is_refused_where_no_clients_are_configured(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as url:
        app, services = make_app(url, ())
        try:
            key = SigningKey("EC", "k")
            refused(
                app.get("/cds-services", headers=Ehr("https://e", key, T).headers(DISCOVERY)),
                "no trusted CDS clients configured",
            )
        finally:
            services.db.dispose()


def test_the_cli_keeps_the_trusted_clients_when_given_a_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from b12plan.cli.records import settings_for

    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"client": [{"iss": "x", "jwks_url": "https://e/j"}]}), "utf-8")
    monkeypatch.setenv("B12PLAN_CDS_CLIENTS", str(path))
    monkeypatch.setenv("B12PLAN_CDS_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv("B12PLAN_CDS_FHIR_SERVERS", "https://fhir.example.org")
    settings = settings_for(f"sqlite:///{tmp_path / 'other.db'}")
    assert [c.iss for c in settings.cds_clients] == ["x"]
    assert settings.cds_public_url == PUBLIC
    assert settings.cds_fhir_servers == ("https://fhir.example.org",)


def test_every_cds_route_refuses_a_caller_without_credentials(world: World) -> None:
    """A route added later without the guard would answer here: each must say 401."""
    paths = world.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/cds-services")
        for method in operations
    ]
    assert len(routes) == 3
    for method, path in routes:
        url = path.replace("{service_id}", "b12plan-patient-view")
        response = world.client.request(method, url, json={})
        assert response.status_code == 401, (method, path, response.status_code)
