"""Issue 13's attacks, each as it was made, against the real app (SQLite copy of the demo store).

Sign-in throttling, the CSRF rule, request limits, accounts and sessions, FHIR id privacy and
the response headers. The audit chain has its own module (``test_audit_chain.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from b12plan.app import Settings, build_services, create_app
from b12plan.knowledge import load_knowledge
from b12plan.service.errors import ServiceError, TooManyAttempts, Unauthenticated
from b12plan.service.hashing import HASHING_NICE, HashingPool
from b12plan.service.passwords import password_problem
from b12plan.store import models
from tests.api.conftest import SITE, Api
from tests.fhir.support import bundle_of
from tests.store.support import FAST_HASH, NOW

PROBLEM = "application/problem+json"
EVIL = "https://evil.example"

K = load_knowledge()


def problem_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def failed_sign_ins(api: Api) -> list[models.AuditEntry]:
    with api.services.db.reading() as session:
        return list(
            session.scalars(
                select(models.AuditEntry).where(models.AuditEntry.action == "login-failed")
            )
        )


# --- 1. sign-in throttling ----------------------------------------------------------------------


def test_forty_wrong_passwords_then_the_right_one_is_refused_with_retry_after(api: Api) -> None:
    statuses = [
        api.client.post(
            "/api/v1/auth/token", data={"username": "dr.demo", "password": f"guess-{n}"}
        ).status_code
        for n in range(40)
    ]
    assert statuses[:6] == [401] * 6  # five free tries for typos; the sixth failure blocks
    assert statuses[6:] == [429] * 34
    right = api.client.post(
        "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    body = problem_of(right, 429)
    assert body["type"] == "urn:b12plan:problem:too-many-attempts"
    assert int(right.headers["retry-after"]) >= 1
    # Every failed password was audited (the refused-while-blocked tries did no password work).
    audited = failed_sign_ins(api)
    assert len(audited) == 6 and all("wrong password" in (e.detail or "") for e in audited)


def test_guessing_the_current_password_from_a_stolen_session_is_throttled(api: Api) -> None:
    """A stolen session must not become an unthrottled password oracle: wrong current
    passwords count against the account's sign-in limit, are audited, and block it."""
    stolen = api.clinician()
    statuses = [
        api.client.post(
            "/api/v1/auth/password",
            headers=stolen,
            json={"current_password": f"guess-{n}", "new_password": "a much longer phrase"},
        ).status_code
        for n in range(10)
    ]
    assert statuses[:6] == [422] * 6  # the five free tries, then the sixth failure blocks
    assert statuses[6:] == [429] * 4
    right = api.client.post(
        "/api/v1/auth/password",
        headers=stolen,
        json={"current_password": "demo-clinician", "new_password": "a much longer phrase"},
    )
    problem_of(right, 429)
    assert int(right.headers["retry-after"]) >= 1
    audited = failed_sign_ins(api)
    assert len(audited) == 6 and all("password change" in (e.detail or "") for e in audited)
    # The account is blocked for sign-in too, and the password did not change.
    problem_of(
        api.client.post(
            "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
        ),
        429,
    )


def test_one_address_trying_many_accounts_is_throttled_by_address(api: Api) -> None:
    statuses = [
        api.client.post(
            "/api/v1/auth/token", data={"username": f"nobody.{n}", "password": "guess"}
        ).status_code
        for n in range(25)
    ]
    assert statuses[:21] == [401] * 21 and set(statuses[21:]) == {429}
    # Even a real user with the right password waits while the address is blocked.
    problem_of(
        api.client.post(
            "/api/v1/auth/token", data={"username": "pat.demo", "password": "demo-patient"}
        ),
        429,
    )
    assert any("sign-in as 'nobody.0'" in e.actor for e in failed_sign_ins(api))


def test_the_web_form_and_the_cookie_session_share_the_limits(api: Api) -> None:
    browser = api.browser()
    for n in range(6):
        browser.post("/login", data={"username": "dr.demo", "password": f"guess-{n}"})
    page = browser.post("/login", data={"username": "dr.demo", "password": "demo-clinician"})
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert "Too many sign-in attempts" in page.text
    problem_of(
        browser.post(
            "/api/v1/auth/session", data={"username": "dr.demo", "password": "demo-clinician"}
        ),
        429,
    )


@dataclass
class MovingClock:
    current: dt.datetime = field(default_factory=lambda: NOW)

    def now(self) -> dt.datetime:
        return self.current

    def today(self) -> dt.date:
        return self.current.date()


@pytest.fixture
def timed(api: Api) -> Iterator[tuple[Api, MovingClock]]:
    """The same store with a clock the test moves."""
    clock = MovingClock()
    services = build_services(
        Settings(database_url=api.services.settings.database_url, throttle_delay_seconds=0),
        clock=clock,
        password_hash=FAST_HASH,
    )
    with TestClient(create_app(services=services)) as client:
        yield Api(client, services, client.app), clock  # type: ignore[arg-type]
    services.db.dispose()


def test_a_throttled_sign_in_is_answered_slowly_without_holding_a_thread(api: Api) -> None:
    """The tarpit: a client ignoring Retry-After waits on every refused try (an async sleep)."""
    services = build_services(
        replace(api.services.settings, throttle_delay_seconds=0.3),
        clock=api.services.clock,
        password_hash=FAST_HASH,
    )
    client = TestClient(create_app(services=services))
    for n in range(6):
        client.post("/api/v1/auth/token", data={"username": "dr.demo", "password": f"x{n}"})
    started = time.perf_counter()
    refused = client.post("/api/v1/auth/token", data={"username": "dr.demo", "password": "x"})
    assert refused.status_code == 429
    assert time.perf_counter() - started >= 0.3
    services.db.dispose()


def test_the_block_lifts_after_the_backoff_and_success_resets_the_account(
    timed: tuple[Api, MovingClock],
) -> None:
    api, clock = timed
    for n in range(6):
        api.client.post("/api/v1/auth/token", data={"username": "dr.demo", "password": f"x{n}"})
    refused = api.client.post(
        "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    wait = int(refused.headers["retry-after"])
    clock.current += dt.timedelta(seconds=wait)
    assert api.login("dr.demo", "demo-clinician")  # the right password works once it lifts
    with api.services.db.reading() as session:
        assert session.get(models.SignInThrottle, "account:dr.demo") is None


class LockProbe:
    """A password hasher that checks, while it verifies, that no write transaction is open:
    it tries to take SQLite's write lock itself, with no waiting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inner = FAST_HASH
        self.lock_free: list[bool] = []

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        probe = sqlite3.connect(self.path, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            self.lock_free.append(True)
        except sqlite3.OperationalError:
            self.lock_free.append(False)
        finally:
            probe.close()
        return self.inner.verify(password, hashed)


def test_the_password_is_verified_before_any_write_lock_is_taken(api: Api) -> None:
    url = api.services.settings.database_url
    probe = LockProbe(Path(url.removeprefix("sqlite:///")))
    services = build_services(
        Settings(database_url=url),
        clock=api.services.clock,
        password_hash=probe,  # type: ignore[arg-type]
    )
    probe.lock_free.clear()  # the decoy hash made at start-up
    services.auth.login("dr.demo", "demo-clinician")
    with pytest.raises(Exception, match="wrong username or password"):
        services.auth.login("dr.demo", "not the password")
    assert probe.lock_free == [True, True]
    services.db.dispose()


class GatedHash:
    """A hasher whose checks wait until the test opens the gate (and say when one started)."""

    def __init__(self) -> None:
        self.inner = FAST_HASH
        self.started = threading.Event()
        self.gate = threading.Event()
        self.checks = 0

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def verify(self, password: str, hashed: str) -> bool:
        self.checks += 1
        self.started.set()
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.verify(password, hashed)


def test_an_account_one_failure_from_a_block_gets_one_password_check_at_a_time(
    api: Api,
) -> None:
    """Clients waiting for a block to lift must not all get an Argon2 check at that moment."""
    hasher = GatedHash()
    hasher.gate.set()
    services = build_services(
        Settings(database_url=api.services.settings.database_url, throttle_delay_seconds=0),
        clock=api.services.clock,
        password_hash=hasher,  # type: ignore[arg-type]
    )
    auth = services.auth
    for n in range(5):  # the five free failures: the next one blocks
        with pytest.raises(Unauthenticated):
            auth.login("dr.demo", f"guess-{n}")
    hasher.gate.clear()
    hasher.started.clear()
    checks = hasher.checks
    first: list[BaseException] = []

    def try_once() -> None:
        try:
            auth.login("dr.demo", "guess-5")
        except ServiceError as exc:
            first.append(exc)

    running = threading.Thread(target=try_once)
    running.start()
    assert hasher.started.wait(30)
    with pytest.raises(TooManyAttempts) as refused:
        auth.login("dr.demo", "demo-clinician")  # even the right password waits its turn
    assert refused.value.retry_after == 1
    assert hasher.checks == checks + 1
    hasher.gate.set()
    running.join(30)
    assert isinstance(first[0], Unauthenticated)
    with pytest.raises(TooManyAttempts):  # the sixth failure blocked the account
        auth.login("dr.demo", "demo-clinician")
    assert auth.login("pat.demo", "demo-patient").user.username == "pat.demo"  # not held up
    services.db.dispose()


def test_a_known_block_is_refused_without_a_statement_and_seen_by_every_worker(
    timed: tuple[Api, MovingClock],
) -> None:
    api, clock = timed
    other_worker = build_services(
        Settings(database_url=api.services.settings.database_url, throttle_delay_seconds=0),
        clock=clock,
        password_hash=FAST_HASH,
    )
    statements: list[str] = []
    for services in (api.services, other_worker):
        event.listen(
            services.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
    for n in range(6):
        with pytest.raises(Unauthenticated):
            api.services.auth.login("dr.demo", f"guess-{n}", address="203.0.113.9")
    statements.clear()
    with pytest.raises(TooManyAttempts):
        api.services.auth.login("dr.demo", "guess", address="203.0.113.9")
    assert statements == []  # this worker wrote the block: it knows it
    with pytest.raises(TooManyAttempts):
        other_worker.auth.login("dr.demo", "guess", address="203.0.113.9")
    reads = [s for s in statements if s != "BEGIN"]
    assert len(reads) == 1 and "FROM sign_in_throttle" in reads[0]  # one read of the table ...
    with pytest.raises(TooManyAttempts):
        other_worker.auth.login("dr.demo", "guess", address="203.0.113.10")
    assert len([s for s in statements if s != "BEGIN"]) == 1  # ... then it knows it too
    # The table stays the truth: a new password set by an admin on one worker reaches the
    # other once its memory of the block is older than remember_blocks_for.
    admin = services_principal()
    api.services.auth.set_password(admin, "dr.demo", "a brand new passphrase 42")
    assert api.services.auth.login("dr.demo", "a brand new passphrase 42", address="198.51.100.1")
    clock.current += api.services.auth.throttle.limits.remember_blocks_for
    assert other_worker.auth.login("dr.demo", "a brand new passphrase 42", address="198.51.100.2")
    other_worker.db.dispose()


def services_principal() -> Any:
    from b12plan.service import Principal

    return Principal.system("test")


def test_password_checks_beyond_the_queue_are_refused_at_once() -> None:
    pool = HashingPool(workers=1, queue=0)
    gate = threading.Event()
    started = threading.Event()

    def slow_check() -> bool:
        started.set()
        return gate.wait(30)

    running = threading.Thread(target=pool.run, args=(slow_check,))
    running.start()
    assert started.wait(30)
    with pytest.raises(TooManyAttempts) as refused:
        pool.run(lambda: True)
    assert refused.value.retry_after == 1
    gate.set()
    running.join(30)
    assert pool.run(lambda: True) is True  # the place is free again
    pool.shutdown()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice and affinity are Linux's")
def test_password_checks_run_at_low_priority_on_half_the_cores() -> None:
    pool = HashingPool()
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def where() -> tuple[int, set[int]]:
        tid = threading.get_native_id()
        return os.getpriority(os.PRIO_PROCESS, tid), os.sched_getaffinity(0)

    priority, cpus = pool.run(where)
    assert priority == HASHING_NICE
    assert cpus == set(pool.cpus)
    allowed = os.sched_getaffinity(0)
    assert len(cpus) == max(1, len(allowed) // 2) and cpus <= allowed
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # caller unchanged
    pool.shutdown()


# --- 2. one CSRF rule -----------------------------------------------------------------------------


def signed_in_browser(api: Api, origin: str | None = SITE) -> TestClient:
    """A browser holding the clinician's session cookie; ``origin`` is what it sends next."""
    browser = api.browser()
    response = browser.post(
        "/api/v1/auth/session", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    assert response.status_code == 200, response.text
    browser.headers.pop("Origin")
    if origin is not None:
        browser.headers["Origin"] = origin
    return browser


def test_login_csrf_a_cross_site_form_cannot_sign_the_victim_in(api: Api) -> None:
    attacker_form = api.browser(origin=EVIL)
    response = attacker_form.post(
        "/api/v1/auth/session", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    assert problem_of(response, 403)["type"] == "urn:b12plan:problem:cross-site-request"
    assert "set-cookie" not in response.headers
    assert (
        attacker_form.post(
            "/login", data={"username": "dr.demo", "password": "demo-clinician"}
        ).status_code
        == 403
    )


BUNDLE_CASE = {
    "schema_version": 1,
    "as_of": "2026-05-01",
    "jurisdiction": "GB",
    "patient": {"id": "csrf-victim", "sex": "female", "birth_date": "1960-01-01"},
}


def import_bundle() -> dict[str, Any]:
    bundle = bundle_of(BUNDLE_CASE, knowledge=K)
    bundle["type"] = "collection"
    return bundle


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/fhir", import_bundle()),
        ("POST", "/cds-services/b12plan-patient-view", {"hook": "patient-view"}),
        ("POST", "/api/v1/auth/logout", None),
        ("POST", "/api/v1/patients/demo-02/symptoms", {"date": "2026-05-01", "code": "fatigue"}),
        ("POST", "/clinic/patients/demo-02/symptom", None),
        ("POST", "/logout", None),
        ("POST", "/account/password", None),
    ],
    ids=[
        "fhir",
        "cds-hooks",
        "api-logout",
        "api-record",
        "web-form",
        "web-logout",
        "web-password",
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {},  # neither Origin nor Sec-Fetch-Site
        {"Origin": "https://testserver:8443"},  # the same host, another port
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain
        {"Origin": SITE, "Sec-Fetch-Site": "cross-site"},
        {"Origin": EVIL, "X-Forwarded-Host": "evil.example"},  # a client-sent forwarded host
    ],
    ids=[
        "evil-origin",
        "null-origin",
        "no-origin",
        "other-port",
        "cross-site",
        "same-site",
        "mixed",
        "forwarded-host",
    ],
)
def test_every_cookie_authenticated_write_from_another_site_is_refused(
    api: Api, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    browser = signed_in_browser(api, origin=None)
    before = len(api.services.records.list_patients(_admin(api), limit=200).items)
    response = browser.request(
        method, path, headers=headers, content=json.dumps(body) if body is not None else None
    )
    assert response.status_code == 403, response.text
    assert len(api.services.records.list_patients(_admin(api), limit=200).items) == before
    assert browser.get("/api/v1/auth/me").status_code == 200  # not even signed out


def _admin(api: Api) -> Any:
    from b12plan.service import Principal

    return Principal.system("test")


def test_the_same_requests_from_this_site_succeed(api: Api) -> None:
    browser = signed_in_browser(api, origin=SITE)
    created = browser.post("/fhir", json=import_bundle())
    assert created.status_code == 201, created.text
    assert browser.post("/api/v1/auth/logout").status_code == 204
    same_origin = signed_in_browser(api, origin=None)
    same_origin.headers["Sec-Fetch-Site"] = "same-origin"  # a browser may send only this
    assert same_origin.post("/api/v1/auth/logout").status_code == 204


def test_bearer_requests_need_no_origin(api: Api) -> None:
    response = api.client.post("/fhir", headers=api.clinician(), json=import_bundle())
    assert response.status_code == 201, response.text


def test_a_page_on_another_port_cannot_post_text_plain_to_fhir(api: Api) -> None:
    browser = signed_in_browser(api, origin=SITE)
    response = browser.post(
        "/fhir", content=json.dumps(import_bundle()), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["resourceType"] == "OperationOutcome"
    # JSON API routes too, for bearer clients as well: a form's content type never parses.
    record = api.client.post(
        "/api/v1/patients/demo-02/symptoms",
        headers={**api.clinician(), "Content-Type": "application/x-www-form-urlencoded"},
        content="date=2026-05-01&code=fatigue",
    )
    problem_of(record, 415)


def test_forwarded_hosts_count_only_when_allowed(api: Api) -> None:
    services = build_services(
        Settings(
            database_url=api.services.settings.database_url, allowed_hosts=("clinic.example",)
        ),
        clock=api.services.clock,
        password_hash=FAST_HASH,
    )
    proxied = TestClient(
        create_app(services=services),
        base_url="https://internal:8000",
        headers={"X-Forwarded-Host": "clinic.example", "Origin": "https://clinic.example"},
    )
    signed = proxied.post(
        "/api/v1/auth/session", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    assert signed.status_code == 200, signed.text
    spoofed = proxied.post(
        "/api/v1/auth/logout", headers={"X-Forwarded-Host": "evil.example", "Origin": EVIL}
    )
    assert spoofed.status_code == 403
    unknown_host = TestClient(create_app(services=services), base_url="https://evil.example")
    assert unknown_host.get("/api/v1/health").status_code == 403
    services.db.dispose()


# --- 3. request limits ----------------------------------------------------------------------------


def test_a_huge_body_is_refused_before_sign_in_is_checked(api: Api) -> None:
    big = b"x" * 2_000_001
    response = api.client.post(
        "/api/v1/patients/demo-02/symptoms",
        content=big,
        headers={"Content-Type": "application/json"},
    )
    assert problem_of(response, 413)["type"] == "urn:b12plan:problem:payload-too-large"


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(300):
            yield b" " * 10_000  # 3 MB, streamed with Transfer-Encoding: chunked

    response = api.client.post(
        "/api/v1/assess", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem_of(response, 413)


def test_a_fhir_import_has_its_own_larger_limit(api: Api) -> None:
    padded = import_bundle()
    padded["id"] = "p" * 10  # still a normal bundle
    padded["meta"] = {"tag": [{"display": "x" * 1_500_000}]}
    response = api.client.post("/fhir", headers=api.clinician(), json=padded)
    assert response.status_code != 413  # 1.5 MB is under the import limit
    response = api.client.post(
        "/fhir",
        headers={
            **api.clinician(),
            "Content-Length": "30000000",
            "Content-Type": "application/fhir+json",
        },
        content=b"{}",
    )
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/fhir", "/cds-services/b12plan-patient-view", "/api/v1/assess"])
def test_50000_deep_json_is_a_4xx_not_a_recursion_error(api: Api, path: str) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    response = api.client.post(
        path, headers={**api.clinician(), "Content-Type": "application/json"}, content=deep
    )
    assert response.status_code == 422, response.text
    assert "nested" in response.text


def test_a_duplicate_key_is_refused_naming_the_key(api: Api) -> None:
    body = '{"date": "2026-05-01", "code": "fatigue", "code": "numbness"}'
    response = api.client.post(
        "/api/v1/patients/demo-02/symptoms",
        headers={**api.clinician(), "Content-Type": "application/json"},
        content=body,
    )
    problem = problem_of(response, 422)
    assert problem["errors"][0]["loc"] == "code" and "twice" in problem["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/patients/demo-02/assessment?as_of=9999-12-31",
        "/api/v1/worklist?as_of=9999-12-31",
        "/api/v1/patients/demo-02/assessment?as_of=1000-01-01",
    ],
)
def test_dates_near_the_end_of_the_calendar_are_422_not_500(api: Api, path: str) -> None:
    problem = problem_of(api.client.get(path, headers=api.admin()), 422)
    assert problem["errors"][0]["loc"] == "as_of"


def test_a_case_assessed_in_9999_is_422_not_500(api: Api) -> None:
    case = json.loads(
        (
            Path(__file__).parents[2] / "src/b12plan/examples/02-monthly-from-the-start.json"
        ).read_text()
    )
    case["as_of"] = "9999-12-31"
    problem_of(api.client.post("/api/v1/assess", headers=api.clinician(), json=case), 422)


# --- 4. accounts and sessions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "at least 12"),
        ("password1234", "common"),
        ("iloveyou2024!", "common"),
        ("abcabcabcabc", "repeated"),
    ],
)
def test_weak_passwords_are_refused_naming_the_field(api: Api, password: str, why: str) -> None:
    assert why in (password_problem(password) or "")
    response = api.client.post(
        "/api/v1/users",
        headers=api.admin(),
        json={"username": "dr.weak", "password": password, "role": "admin"},
    )
    problem = problem_of(response, 422)
    assert problem["errors"][0]["loc"] == "password"


def test_disabling_a_user_ends_every_session_at_once(api: Api) -> None:
    first, second = api.clinician(), api.clinician()
    disabled = api.client.post("/api/v1/users/dr.demo/disable", headers=api.admin())
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    for headers in (first, second):
        problem_of(api.client.get("/api/v1/auth/me", headers=headers), 401)
    problem_of(
        api.client.post(
            "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
        ),
        401,
    )
    assert api.client.post("/api/v1/users/dr.demo/enable", headers=api.admin()).status_code == 200
    assert api.clinician()


def test_only_admins_disable_and_an_admin_cannot_lock_themselves_out(api: Api) -> None:
    problem_of(api.client.post("/api/v1/users/pat.demo/disable", headers=api.clinician()), 403)
    problem_of(api.client.post("/api/v1/users/admin.demo/disable", headers=api.admin()), 403)


def test_changing_your_password_ends_your_other_sessions(api: Api) -> None:
    here, elsewhere = api.patient(), api.patient()
    wrong = api.client.post(
        "/api/v1/auth/password",
        headers=here,
        json={"current_password": "not it", "new_password": "a much longer phrase"},
    )
    assert problem_of(wrong, 422)["errors"][0]["loc"] == "current_password"
    weak = api.client.post(
        "/api/v1/auth/password",
        headers=here,
        json={"current_password": "demo-patient", "new_password": "password1234"},
    )
    assert problem_of(weak, 422)["errors"][0]["loc"] == "new_password"
    changed = api.client.post(
        "/api/v1/auth/password",
        headers=here,
        json={"current_password": "demo-patient", "new_password": "a much longer phrase"},
    )
    assert changed.status_code == 204, changed.text
    assert api.client.get("/api/v1/auth/me", headers=here).status_code == 200
    problem_of(api.client.get("/api/v1/auth/me", headers=elsewhere), 401)
    assert api.login("pat.demo", "a much longer phrase")


def test_sessions_end_when_idle_and_at_their_absolute_limit(
    timed: tuple[Api, MovingClock],
) -> None:
    api, clock = timed
    headers = api.clinician()
    clock.current += dt.timedelta(minutes=29)
    assert api.client.get("/api/v1/auth/me", headers=headers).status_code == 200  # used: touched
    clock.current += dt.timedelta(minutes=29)
    assert api.client.get("/api/v1/auth/me", headers=headers).status_code == 200
    clock.current += dt.timedelta(minutes=31)
    problem_of(api.client.get("/api/v1/auth/me", headers=headers), 401)  # idle 31 minutes
    busy = api.clinician()
    for _ in range(12 * 3):  # used every 20 minutes for 12 hours
        clock.current += dt.timedelta(minutes=20)
        api.client.get("/api/v1/auth/me", headers=busy)
    problem_of(api.client.get("/api/v1/auth/me", headers=busy), 401)  # 12 hours after sign-in


# --- 6/7. headers, cookie -----------------------------------------------------------------------


def test_every_response_carries_the_csp_and_https_ones_hsts(api: Api) -> None:
    page = api.browser().get("/login")
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["strict-transport-security"].startswith("max-age=")
    plain = api.client.get("/api/v1/health")
    assert "content-security-policy" in plain.headers
    assert "strict-transport-security" not in plain.headers  # not over plain HTTP


def test_the_cookie_is_secure_host_only_by_default_and_plain_in_dev_mode(api: Api) -> None:
    default = api.browser().post(
        "/api/v1/auth/session", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    cookie = default.headers["set-cookie"]
    assert cookie.startswith("__Host-b12plan_session=") and "Secure" in cookie
    assert "Domain" not in cookie and "Path=/" in cookie
    dev = build_services(
        Settings(database_url=api.services.settings.database_url, dev=True, cookie_secure=False),
        clock=api.services.clock,
        password_hash=FAST_HASH,
    )
    local = TestClient(create_app(services=dev), headers={"Origin": "http://testserver"})
    plain = local.post(
        "/api/v1/auth/session", data={"username": "dr.demo", "password": "demo-clinician"}
    )
    assert plain.headers["set-cookie"].startswith("b12plan_session=")
    assert "Secure" not in plain.headers["set-cookie"]
    assert local.get("/docs").status_code == 200
    dev.db.dispose()


def test_settings_default_to_secure_outside_dev_mode() -> None:
    assert Settings.from_env({}).cookie_secure is True
    assert Settings.from_env({"B12PLAN_DEV": "1"}).cookie_secure is False
    limits = Settings.from_env({"B12PLAN_MAX_BODY_BYTES": "2048", "B12PLAN_ALLOWED_HOSTS": "A.b"})
    assert (limits.max_body_bytes, limits.allowed_hosts) == (2048, ("a.b",))


# --- 8. FHIR --------------------------------------------------------------------------------------


def test_importing_another_clinics_patient_id_reveals_nothing(api: Api) -> None:
    """demo-05 is filed at the other demo clinic; dr.demo cannot see it."""
    bundle = bundle_of({**BUNDLE_CASE, "patient": {"id": "demo-05", "sex": "male"}}, knowledge=K)
    bundle["type"] = "collection"
    taken = api.client.post("/fhir", headers=api.clinician(), json=bundle)
    bundle_free = bundle_of({**BUNDLE_CASE, "patient": {"id": "never-used-1"}}, knowledge=K)
    bundle_free["type"] = "collection"
    free = api.client.post("/fhir", headers=api.clinician(), json=bundle_free)
    assert taken.status_code == free.status_code == 201, taken.text
    # Both get a server-assigned id: the answer is the same whether the id was taken or not.
    assert taken.json()["id"] not in ("demo-05", "never-used-1")
    assert free.json()["id"] != "never-used-1"


def test_fhir_errors_are_operation_outcomes_even_before_the_route(api: Api) -> None:
    unsigned = api.client.post("/fhir", json=import_bundle())
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"].startswith("application/fhir+json")
    assert unsigned.json()["resourceType"] == "OperationOutcome"
    missing = api.client.get("/fhir/Patient/demo-05/$everything", headers=api.clinician())
    assert missing.json()["resourceType"] == "OperationOutcome"


def test_an_import_reports_its_throughput(api: Api) -> None:
    """The header; that the import leaves the event loop free is tests/api/test_no_stall.py."""
    response = api.client.post("/fhir", headers=api.clinician(), json=import_bundle())
    assert response.status_code == 201, response.text
    entries, rate = response.headers["x-import-throughput"].split("; ")
    assert entries == f"entries={len(import_bundle()['entry'])}" and rate.startswith("per_second=")
