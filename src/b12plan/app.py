"""The composition root: settings from the environment, services, and the FastAPI app.

This is the one module that picks the clock, the database and the password hasher, and wires
the service layer to the REST API (and to any other router that serves people). Nothing is
built at import time: ``create_app(settings)`` does it, and ``uvicorn --factory
b12plan.app:app_from_env`` calls it with the environment's settings.

Environment:

- ``B12PLAN_DATABASE_URL``: ``sqlite:///PATH`` (default ``sqlite:///./b12plan.db``) or
  ``postgresql+psycopg://user@host:port/db``.
- ``B12PLAN_TODAY``: pin "today" (``YYYY-MM-DD``) for reproducible demos; default: the clock.
- ``B12PLAN_TOKEN_TTL_HOURS``: lifetime of sign-in tokens and sessions (default 12).
- ``B12PLAN_COOKIE_SECURE``: ``0`` to send the session cookie over plain HTTP (default: on,
  the cookie is ``__Host-b12plan_session``, Secure; off by default with ``B12PLAN_DEV``).
- ``B12PLAN_CDS_FHIR_SERVERS``: comma-separated FHIR server URLs the CDS Hooks services may
  query for missing prefetch (default: none; they use prefetch or the store).
- ``B12PLAN_KNOWLEDGE_DIR``: a folder holding a clinic's reviewed copy of the knowledge files
  (default: the shipped ones). Checked whole at start-up; a bad copy stops the program.
- ``B12PLAN_DEFAULT_JURISDICTION``: the protocols (``GB`` or ``US``) for an imported FHIR record
  that names no country b12plan knows in ``Patient.address`` (default ``GB``).
- ``B12PLAN_CDS_CLIENTS``: a TOML or JSON file of the CDS clients (EHRs) trusted to call the
  CDS Hooks services with a signed JWT (default: none; only b12plan's own users may call).
- ``B12PLAN_CDS_PUBLIC_URL``: the base URL EHRs call (e.g. ``https://b12.example.org``); a
  JWT's ``aud`` must be this plus the path called. Required with ``B12PLAN_CDS_CLIENTS``.
- ``B12PLAN_SMTP_*``, ``B12PLAN_REMINDER_*``, ``B12PLAN_PUBLIC_URL``: reminders (see
  ``b12plan.reminders.settings``).

Security settings (issue 13, docs/security.md):

- ``B12PLAN_DEV``: ``1`` for a local demo over plain HTTP: the cookie is not Secure and the API
  docs page (``/docs``, which loads Swagger UI from a CDN) is served.
- ``B12PLAN_SESSION_IDLE_MINUTES``: a session or token unused this long ends (default 30);
  ``B12PLAN_TOKEN_TTL_HOURS`` is the absolute limit.
- ``B12PLAN_MAX_BODY_BYTES``: largest request body (default 1,000,000);
  ``B12PLAN_MAX_IMPORT_BYTES``: largest FHIR Bundle to ``POST /fhir`` (default 20,000,000).
- ``B12PLAN_THROTTLE_DELAY_SECONDS``: a throttled sign-in (429) is answered after this delay
  (default 1; an async wait that holds no thread), so a flood that ignores Retry-After slows.
- ``B12PLAN_ALLOWED_HOSTS``: comma-separated host names (as in ``Host``, with the port if not
  the default) the site answers to; ``X-Forwarded-Host`` is honoured only for these.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials
from pwdlib import PasswordHash

from b12plan.api import (
    install_problem_handlers,
    make_access_router,
    make_assess_router,
    make_current_user,
    make_records_router,
)
from b12plan.api.guard import CSP, GuardSettings, SecurityGuard
from b12plan.api.reminders import make_reminders_router
from b12plan.api.serving import served
from b12plan.cds_hooks.api import CdsAuth
from b12plan.cds_hooks.api import make_router as make_cds_router
from b12plan.cds_hooks.api import new_uuid as cds_card_id
from b12plan.cds_hooks.trust import (
    ClientTrust,
    TrustConfigError,
    TrustedClient,
    bearer_token,
    https_or_loopback,
    load_clients,
)
from b12plan.contract import CaseError, parse_iso_date
from b12plan.core.assessment import Assessment
from b12plan.core.knowledge import Knowledge, KnowledgeError
from b12plan.core.model import Case
from b12plan.fhir.api import make_router as make_fhir_router
from b12plan.ics import assessment_calendar
from b12plan.knowledge import KNOWLEDGE_DIR_ENV, load_knowledge_at
from b12plan.reminders.knowledge import load_reminder_rules
from b12plan.reminders.mail import SmtpMailer
from b12plan.reminders.outbox import Backoff, Outbox
from b12plan.reminders.service import ReminderService
from b12plan.reminders.settings import ReminderSettings, ReminderSettingsError
from b12plan.service import (
    AuthService,
    Clock,
    InvalidInput,
    NotFound,
    PinnedDayClock,
    Principal,
    RecordsService,
    StoredRecordInvalid,
    SystemClock,
    session_cookie_name,
)
from b12plan.service.carers import CarerService
from b12plan.service.cds import CdsLedger
from b12plan.service.records import new_uuid
from b12plan.store import DEFAULT_URL, Database, current_revision, head_revision
from b12plan.web import make_router as make_web_router

# With --dev only: Swagger UI's page loads its script and style from jsDelivr and runs inline.
DEV_DOCS_CSP = CSP.replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net"
).replace("style-src 'self'", "style-src 'self' https://cdn.jsdelivr.net")


class SettingsError(ValueError):
    """A setting from the environment is unusable; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    today: dt.date | None = None
    token_ttl_hours: float = 12.0
    cookie_secure: bool = True
    cds_fhir_servers: tuple[str, ...] = ()
    knowledge_dir: Path | None = None
    default_jurisdiction: str = "GB"
    # CDS Hooks client trust (ADR 0045): B12PLAN_CDS_CLIENTS, B12PLAN_CDS_PUBLIC_URL
    cds_clients: tuple[TrustedClient, ...] = ()
    cds_public_url: str | None = None
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    # --- security (issue 13; ADRs 0040-0044) ---------------------------------------------
    dev: bool = False
    session_idle_minutes: float = 30.0
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 20_000_000
    allowed_hosts: tuple[str, ...] = ()
    throttle_delay_seconds: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``B12PLAN_*`` variables; a bad value raises ``SettingsError``."""
        env = os.environ if env is None else env
        today = None
        if env.get("B12PLAN_TODAY"):
            try:
                today = parse_iso_date(env["B12PLAN_TODAY"])
            except ValueError as exc:
                raise SettingsError(f"B12PLAN_TODAY: {exc}") from None
        ttl = cls.token_ttl_hours
        if env.get("B12PLAN_TOKEN_TTL_HOURS"):
            try:
                ttl = float(env["B12PLAN_TOKEN_TTL_HOURS"])
            except ValueError:
                raise SettingsError("B12PLAN_TOKEN_TTL_HOURS: expected a number of hours") from None
            if not 0 < ttl <= 24 * 366:
                raise SettingsError("B12PLAN_TOKEN_TTL_HOURS: must be above 0 and at most a year")
        security = _security_from_env(env)
        secure = env.get("B12PLAN_COOKIE_SECURE", "").strip().lower()
        if secure not in ("0", "1", "true", "false", "yes", "no", ""):
            raise SettingsError("B12PLAN_COOKIE_SECURE: expected 1 or 0")
        servers = tuple(
            s.strip() for s in env.get("B12PLAN_CDS_FHIR_SERVERS", "").split(",") if s.strip()
        )
        for server in servers:
            if not server.startswith(("https://", "http://")):
                raise SettingsError(f"B12PLAN_CDS_FHIR_SERVERS: not an http(s) URL: {server!r}")
        knowledge_dir = None
        if env.get(KNOWLEDGE_DIR_ENV):
            knowledge_dir = Path(env[KNOWLEDGE_DIR_ENV])
            if not knowledge_dir.is_dir():
                raise SettingsError(f"{KNOWLEDGE_DIR_ENV}: no such directory: {knowledge_dir}")
        try:
            reminders = ReminderSettings.from_env(env)
        except ReminderSettingsError as exc:
            raise SettingsError(str(exc)) from None
        return cls(
            database_url=env.get("B12PLAN_DATABASE_URL") or DEFAULT_URL,
            today=today,
            token_ttl_hours=ttl,
            cookie_secure=secure in ("1", "true", "yes") if secure else not security["dev"],
            cds_fhir_servers=servers,
            knowledge_dir=knowledge_dir,
            default_jurisdiction=(
                env.get("B12PLAN_DEFAULT_JURISDICTION", "").strip().upper() or "GB"
            ),
            **_cds_trust_settings(env),
            reminders=reminders,
            **security,
        )


def _cds_trust_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """``cds_clients`` and ``cds_public_url`` from the environment (ADR 0045)."""
    path = env.get("B12PLAN_CDS_CLIENTS", "").strip()
    url = env.get("B12PLAN_CDS_PUBLIC_URL", "").strip() or None
    try:
        clients = load_clients(Path(path)) if path else ()
    except TrustConfigError as exc:
        raise SettingsError(f"B12PLAN_CDS_CLIENTS: {exc}") from None
    if url is not None:
        try:
            url = https_or_loopback(url).rstrip("/")
        except ValueError as exc:
            raise SettingsError(f"B12PLAN_CDS_PUBLIC_URL: {exc}") from None
    if clients and url is None:
        raise SettingsError(
            "B12PLAN_CDS_PUBLIC_URL: required with B12PLAN_CDS_CLIENTS (a JWT's aud must name"
            " the URL the EHR calls, e.g. https://b12.example.org/cds-services/...)"
        )
    return {"cds_clients": clients, "cds_public_url": url}


def _security_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The security settings (kept together so other settings merge without conflict)."""
    dev = env.get("B12PLAN_DEV", "0").strip().lower()
    if dev not in ("0", "1", "true", "false", "yes", "no", ""):
        raise SettingsError("B12PLAN_DEV: expected 1 or 0")
    out: dict[str, Any] = {"dev": dev in ("1", "true", "yes")}
    for name, key, low, high in (
        ("B12PLAN_SESSION_IDLE_MINUTES", "session_idle_minutes", 1, 24 * 60),
        ("B12PLAN_MAX_BODY_BYTES", "max_body_bytes", 1024, 1_000_000_000),
        ("B12PLAN_MAX_IMPORT_BYTES", "max_import_bytes", 1024, 1_000_000_000),
        ("B12PLAN_THROTTLE_DELAY_SECONDS", "throttle_delay_seconds", 0, 30),
    ):
        if env.get(name):
            try:
                value = float(env[name]) if key.endswith(("minutes", "seconds")) else int(env[name])
            except ValueError:
                raise SettingsError(f"{name}: expected a number") from None
            if not low <= value <= high:
                raise SettingsError(f"{name}: must be between {low} and {high}")
            out[key] = value
    out["allowed_hosts"] = tuple(
        h.strip().lower() for h in env.get("B12PLAN_ALLOWED_HOSTS", "").split(",") if h.strip()
    )
    return out


@dataclass(frozen=True)
class Services:
    """Everything ``create_app`` wires; other entry points (CLI, web UI) reuse the same set."""

    settings: Settings
    db: Database
    clock: Clock
    knowledge: Knowledge
    records: RecordsService
    auth: AuthService
    cds: CdsLedger
    reminders: ReminderService
    carers: CarerService


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    password_hash: PasswordHash | None = None,
    new_id: Callable[[], str] = new_uuid,
) -> Services:
    """The service layer for ``settings``: one database, one clock, one knowledge base.

    The knowledge base is loaded here and nowhere else: every adapter is handed this one, so a
    clinic's reviewed copy (``knowledge_dir``) is what every channel uses. A copy that fails
    validation raises ``SettingsError`` naming ``B12PLAN_KNOWLEDGE_DIR`` and the file.
    """
    try:
        knowledge = load_knowledge_at(settings.knowledge_dir)
    except KnowledgeError as exc:
        raise SettingsError(f"{KNOWLEDGE_DIR_ENV}: {exc}") from None
    if clock is None:
        clock = PinnedDayClock(settings.today) if settings.today else SystemClock()
    jurisdictions = sorted({p.jurisdiction for p in knowledge.protocols})
    if settings.default_jurisdiction not in jurisdictions:
        raise SettingsError(
            f"B12PLAN_DEFAULT_JURISDICTION: {settings.default_jurisdiction!r} has no protocols"
            f" (one of {', '.join(jurisdictions)})"
        )
    db = Database(settings.database_url)
    records = RecordsService(db, clock=clock, knowledge=knowledge, new_id=new_id)
    carers = CarerService(db, clock=clock)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        knowledge=knowledge,
        records=records,
        reminders=_reminder_service(settings.reminders, records, carers),
        carers=carers,
        auth=AuthService(
            db,
            clock=clock,
            password_hash=password_hash,
            token_ttl=dt.timedelta(hours=settings.token_ttl_hours),
            idle_timeout=dt.timedelta(minutes=settings.session_idle_minutes),
            new_id=new_id,
        ),
        cds=CdsLedger(db, clock=clock, new_id=new_id),
    )


def _reminder_service(
    settings: ReminderSettings, records: RecordsService, carers: CarerService
) -> ReminderService:
    outbox = Outbox(
        records.db,
        now=records.clock.now,
        lease=dt.timedelta(seconds=settings.lease_seconds),
        backoff=Backoff(base_seconds=settings.backoff_seconds, max_attempts=settings.max_attempts),
    )
    smtp = settings.smtp
    return ReminderService(
        records,
        outbox,
        load_reminder_rules(),
        mailer=None if smtp is None else SmtpMailer(smtp),
        sender=smtp.sender if smtp is not None else "b12plan <reminders@localhost>",
        settings_url=None if settings.public_url is None else f"{settings.public_url}/me/settings",
        carers=carers,
    )


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The web application: REST API under ``/api/v1``, OpenAPI at ``/docs``."""
    services = services or build_services(settings or Settings.from_env())
    dev = services.settings.dev
    cookie = session_cookie_name(services.settings.cookie_secure)
    app = FastAPI(
        docs_url="/docs" if dev else None,  # Swagger UI comes from a CDN: local demos only
        redoc_url="/redoc" if dev else None,
        lifespan=served,
        title="b12plan",
        version=_version(),
        summary="Plans, explains and monitors vitamin B12 injection therapy.",
        description=(
            "Patient records (nothing is deleted: corrections are new versions), the core "
            "assessment of a stored record, a stateless assessment endpoint, a worklist and "
            "calendar export. Errors are `application/problem+json`. Sign in with "
            "`POST /api/v1/auth/token` and send `Authorization: Bearer <token>`."
        ),
    )
    app.state.services = services
    install_problem_handlers(app)
    app.add_middleware(
        SecurityGuard,
        settings=GuardSettings(
            session_cookies=(cookie,),
            max_body_bytes=services.settings.max_body_bytes,
            max_import_bytes=services.settings.max_import_bytes,
            allowed_hosts=services.settings.allowed_hosts,
            csp=CSP,
            docs_csp=DEV_DOCS_CSP if dev else None,
            throttle_delay_seconds=services.settings.throttle_delay_seconds,
        ),
    )
    current_user = make_current_user(services.auth, cookie)
    app.include_router(
        make_access_router(
            services.auth,
            current_user,
            cookie_name=cookie,
            cookie_secure=services.settings.cookie_secure,
        )
    )
    app.include_router(make_records_router(services.records, current_user, _calendar))
    app.include_router(make_reminders_router(services.reminders, current_user))
    head = head_revision()
    app.include_router(
        make_assess_router(services.records, current_user, lambda: _health(services, head))
    )
    app.include_router(
        make_fhir_router(
            _load_case_as(services.records),
            _import_case_as(services.records),
            clock=services.clock.today,
            knowledge=services.knowledge,
            principal=current_user,
            default_jurisdiction=services.settings.default_jurisdiction,
        )
    )
    app.include_router(
        make_cds_router(
            _load_case_as(services.records),
            knowledge=services.knowledge,
            clock=services.clock.today,
            id_factory=cds_card_id,
            fhir_servers=services.settings.cds_fhir_servers,
            principal=_cds_auth(services, current_user, cookie),
            ledger=services.cds,
            default_jurisdiction=services.settings.default_jurisdiction,
        )
    )
    app.include_router(
        make_web_router(
            records=services.records,
            auth=services.auth,
            knowledge=services.knowledge,
            clock=services.clock,
            calendar=_calendar,
            secure_cookies=services.settings.cookie_secure,
            reminders=services.reminders,
            carers=services.carers,
            public_url=services.settings.reminders.public_url,
            cookie_name=cookie,
        )
    )
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory b12plan.app:app_from_env``."""
    return create_app(Settings.from_env())


def _load_case_as(records: RecordsService) -> Callable[[str, Principal], Case | None]:
    """The store as the FHIR and CDS Hooks routers read it: the ``Case`` the signed-in user may
    see, ``None`` when there is none, ``CaseError`` when the stored record fails validation
    (the routers answer that with an OperationOutcome or a card, not a crash)."""

    def load(patient_id: str, who: Principal) -> Case | None:
        try:
            return records.patient_case(who, patient_id)
        except NotFound:
            return None
        except (StoredRecordInvalid, InvalidInput) as exc:
            raise CaseError(exc.errors) from None

    return load


def _cds_auth(
    services: Services, current_user: Callable[..., Principal], cookie_name: str
) -> CdsAuth:
    """Who may call the CDS services: trusted CDS clients (a signed JWT) and b12plan's users."""
    settings = services.settings

    def user(request: Request) -> Principal:
        token = bearer_token(request.headers.get("authorization"))
        credentials = (
            None
            if token is None
            else HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        )
        return current_user(credentials, request.cookies.get(cookie_name))

    trust = None
    if settings.cds_clients:
        trust = ClientTrust(settings.cds_clients, clock=services.clock, replay=services.cds)
    return CdsAuth(user=user, trust=trust, public_base_url=settings.cds_public_url)


def _import_case_as(records: RecordsService) -> Callable[[Case, Principal], str]:
    """FHIR create: the server assigns the patient's id (as FHIR's POST does). Keeping the
    Bundle's id would answer "already exists" for an id held by another clinic, which tells
    the caller that patient exists (ADR 0012: ids of other clinics reveal nothing)."""

    def store(case: Case, who: Principal) -> str:
        return records.import_case(who, case, patient_id=records.new_id())

    return store


def _version() -> str:
    try:
        return metadata.version("b12plan")
    except metadata.PackageNotFoundError:
        return "unknown"


def _calendar(assessment: Assessment, patient_id: str) -> bytes:
    return assessment_calendar(assessment, patient_id=patient_id)


def _health(services: Services, head: str | None) -> dict[str, Any]:
    return {
        "status": "ok",
        "database": services.db.engine.dialect.name,
        "schema_revision": current_revision(services.db.engine),
        "schema_head": head,
        "knowledge_version": services.knowledge.version,
        "today": services.clock.today().isoformat(),
    }
