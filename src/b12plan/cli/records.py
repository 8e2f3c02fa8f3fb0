"""Commands for the patient records service: serve, db, users, clinics, import, export, seed-demo.

Thin: each command reads settings (``B12PLAN_DATABASE_URL`` or ``--database-url``), calls the
service layer and prints. Bad input exits with status 2 and names the field on stderr; heavy
imports (SQLAlchemy, FastAPI, uvicorn) happen inside the commands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from b12plan.app import Services, Settings
    from b12plan.core.model import Case

db_app = typer.Typer(help="Database schema (Alembic migrations shipped in the package).")
users_app = typer.Typer(help="Users who may sign in.")
clinics_app = typer.Typer(help="Clinics (a clinician sees their own clinic's patients).")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///PATH or postgresql+psycopg://... (default: $B12PLAN_DATABASE_URL,"
        " else sqlite:///./b12plan.db)",
        show_default=False,
    ),
]


def register_records_commands(app: typer.Typer) -> None:
    """Add this module's commands and groups to the ``b12plan`` app."""
    app.command("serve")(serve)
    app.command("import")(import_record)
    app.command("export")(export_record)
    app.command("seed-demo")(seed_demo)
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
    app.add_typer(clinics_app, name="clinics")


# --- helpers ----------------------------------------------------------------------------------


def _fail(lines: list[str] | str, code: int = 2) -> NoReturn:
    for line in [lines] if isinstance(lines, str) else lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def settings_for(database_url: str | None) -> Settings:
    """The environment's settings, with ``--database-url`` (when given) replacing only that one.

    ``dataclasses.replace`` copies every other field, so a setting added to ``Settings`` later
    is carried too (``tests/test_settings.py`` checks each field).
    """
    from b12plan.app import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc))
    if database_url:
        settings = dataclasses.replace(settings, database_url=database_url)
    return settings


def _migrate(settings: Settings) -> str | None:
    from sqlalchemy.exc import OperationalError

    from b12plan.store import DatabaseUrlError, upgrade

    try:
        return upgrade(settings.database_url)
    except DatabaseUrlError as exc:
        _fail(f"database_url: {exc}")
    except OperationalError as exc:
        _fail(f"database_url: cannot open the database: {exc.orig}", code=1)


@contextmanager
def records_services(settings: Settings, *, migrate: bool = False) -> Iterator[Services]:
    """The service layer, refusing to run on a database that is not at the shipped schema."""
    from b12plan.app import SettingsError, build_services
    from b12plan.service import ServiceError
    from b12plan.store import DatabaseUrlError, current_revision, head_revision

    if migrate:
        _migrate(settings)
    try:
        services = build_services(settings)
    except DatabaseUrlError as exc:
        _fail(f"database_url: {exc}")
    except SettingsError as exc:
        _fail(str(exc))
    try:
        if current_revision(services.db.engine) != head_revision():
            _fail(
                "database_url: the database is not at the current schema;"
                " run `b12plan db upgrade` first"
            )
        yield services
    except ServiceError as exc:
        errors = getattr(exc, "errors", None)
        if errors:
            _fail([f"{e['loc'] or '(document)'}: {e['msg']}" for e in errors])
        _fail(exc.detail)
    finally:
        services.db.dispose()


def _read_json(path: Path) -> Any:
    from b12plan.contract import CaseError, load_json

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"{path}: cannot read: {exc.strerror}")
    except UnicodeDecodeError:
        _fail(f"{path}: not UTF-8 text")
    try:
        return load_json(text)
    except CaseError as exc:
        _fail([f"{path}: {line}" for line in exc.lines()])


# --- commands ---------------------------------------------------------------------------------


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    database_url: DatabaseUrl = None,
    migrate: Annotated[
        bool, typer.Option(help="Bring the schema up to date before serving.")
    ] = True,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes (each opens its own pool).")
    ] = 1,
    reminders: Annotated[
        bool,
        typer.Option(
            help="Also send reminders every $B12PLAN_REMINDER_INTERVAL_SECONDS (default 900)."
        ),
    ] = False,
    dev: Annotated[
        bool,
        typer.Option(
            help="Local demo over plain HTTP: the session cookie is not Secure, /docs is served."
        ),
    ] = False,
) -> None:
    """Run the REST API and web app with uvicorn (behind HTTPS unless --dev)."""
    settings = settings_for(database_url)
    if dev:
        settings = dataclasses.replace(settings, dev=True, cookie_secure=False)
        os.environ["B12PLAN_DEV"] = "1"  # for --workers: each process reads the environment
    if migrate:
        _migrate(settings)
    if not reminders:
        _serve(settings, host, port, access_log, workers)
        return
    from b12plan.reminders.service import ReminderLoop

    with records_services(settings) as loop_services:
        loop = ReminderLoop(
            loop_services.reminders,
            settings.reminders.interval_seconds,
            report=lambda line: typer.echo(line, err=True),
        )
        loop.start()
        try:
            _serve(settings, host, port, access_log, workers)
        finally:
            loop.stop()


def _serve(settings: Settings, host: str, port: int, access_log: bool, workers: int) -> None:
    import uvicorn

    from b12plan.app import create_app

    dev = settings.dev
    with records_services(settings) as services:
        docs = f"http://{host}:{port}/docs" if dev else f"http://{host}:{port}/openapi.json"
        typer.echo(f"b12plan API on http://{host}:{port}  (OpenAPI: {docs})")
        typer.echo(f"database: {services.db.engine.url.render_as_string(hide_password=True)}")
        sys.stdout.flush()
        if workers == 1:
            app = create_app(services=services)
            uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
            return
    # Several processes: each builds its own app from the environment (one composition root).
    os.environ["B12PLAN_DATABASE_URL"] = settings.database_url
    uvicorn.run(
        "b12plan.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
    )


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply the shipped migrations (Alembic ``upgrade head``)."""
    revision = _migrate(settings_for(database_url))
    typer.echo(f"database schema at revision {revision} (head)")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None) -> None:
    """Print the database's schema revision and the latest shipped one."""
    from sqlalchemy.exc import OperationalError

    from b12plan.store import DatabaseUrlError, current_revision, head_revision

    settings = settings_for(database_url)
    try:
        current = current_revision(settings.database_url)
    except DatabaseUrlError as exc:
        _fail(f"database_url: {exc}")
    except OperationalError as exc:
        _fail(f"database_url: cannot open the database: {exc.orig}", code=1)
    typer.echo(f"current: {current or '(empty)'}  head: {head_revision()}")


@clinics_app.command("add")
def clinics_add(
    clinic_id: Annotated[str, typer.Argument(help="Short id, e.g. north-clinic.")],
    name: Annotated[str, typer.Argument(help="Display name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Add a clinic."""
    from pydantic import ValidationError

    from b12plan.service.schemas import NewClinic, Principal

    try:
        new = NewClinic(id=clinic_id, name=name)
    except ValidationError as exc:
        _fail(_pydantic_lines(exc, {"id": "CLINIC_ID", "name": "NAME"}))
    with records_services(settings_for(database_url)) as services:
        clinic = services.auth.add_clinic(Principal.system("cli"), new)
    typer.echo(f"clinic {clinic.id} added")


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Lower-case sign-in name, e.g. dr.smith.")],
    role: Annotated[str, typer.Option(help="clinician | patient | admin")] = "clinician",
    clinic: Annotated[str | None, typer.Option(help="Clinic id (clinicians).")] = None,
    patient: Annotated[str | None, typer.Option(help="Patient id (patient users).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI.")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a user (the password is prompted for, or read from stdin)."""
    from pydantic import ValidationError

    from b12plan.service.schemas import NewUser, Principal

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        new = NewUser.model_validate(
            {
                "username": username,
                "password": password,
                "role": role,
                "display_name": display_name,
                "clinic_id": clinic,
                "patient_id": patient,
            }
        )
    except ValidationError as exc:
        _fail(
            _pydantic_lines(
                exc,
                {
                    "username": "USERNAME",
                    "role": "--role",
                    "clinic_id": "--clinic",
                    "patient_id": "--patient",
                    "display_name": "--display-name",
                },
            )
        )
    with records_services(settings_for(database_url)) as services:
        user = services.auth.add_user(Principal.system("cli"), new)
    typer.echo(f"user {user.username} added ({user.role}, clinic {user.clinic_id or '-'})")


def import_record(
    file: Annotated[
        Path, typer.Argument(help="A FHIR R4 Bundle or a contract case (JSON); - for stdin.")
    ],
    clinic: Annotated[str | None, typer.Option(help="Clinic to file the patient under.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name for the patient.")] = None,
    patient_id: Annotated[
        str | None, typer.Option(help="Store under this id (default: the document's).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Store a patient from a FHIR Bundle or a contract case (one transaction)."""
    from b12plan.service.schemas import Principal

    document = _read_json(file)
    settings = settings_for(database_url)
    with records_services(settings) as services:
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            document = _bundle_to_case(document, services)
        pid = services.records.import_case(
            Principal.system("cli-import"),
            document,
            clinic_id=clinic or _only_clinic(services),
            display_name=name,
            patient_id=patient_id,
        )
    typer.echo(f"imported patient {pid}")


def export_record(
    patient_id: Annotated[str, typer.Argument(help="The patient's id.")],
    format: Annotated[str, typer.Option(help="fhir (R4 Bundle) or case (contract JSON).")] = "fhir",
    as_of: Annotated[
        str | None, typer.Option(help="Evaluation date YYYY-MM-DD (default: today).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write a stored patient as a FHIR Bundle or a contract case (entered-in-error left out)."""
    from b12plan.contract import parse_iso_date
    from b12plan.service.schemas import Principal

    if format not in ("fhir", "case"):
        _fail(f"--format: expected 'fhir' or 'case', got {format!r}")
    day = None
    if as_of is not None:
        try:
            day = parse_iso_date(as_of)
        except ValueError as exc:
            _fail(f"--as-of: {exc}")
    who = Principal.system("cli-export")
    document: dict[str, Any]
    with records_services(settings_for(database_url)) as services:
        if format == "fhir":
            from b12plan.fhir import case_to_bundle

            case = services.records.patient_case(who, patient_id, as_of=day)
            document = case_to_bundle(
                case, knowledge=services.knowledge, patient_resource_id=patient_id
            )
        else:
            document = services.records.case_document(who, patient_id, as_of=day)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def seed_demo(
    database_url: DatabaseUrl = None,
) -> None:
    """Create demo clinics, synthetic patients (as of today) and demo users; print sign-ins."""
    from b12plan.service.demo import seed_demo as seed

    settings = settings_for(database_url)
    with records_services(settings, migrate=True) as services:
        result = seed(
            services.records, services.auth, today=services.clock.today(), carers=services.carers
        )
    typer.echo(f"demo data as of {services.clock.today().isoformat()}:")
    for patient in result.patients:
        state = "added" if patient.created else "present"
        typer.echo(f"  patient {patient.id:<8} {patient.clinic_id:<12} {state:<8} {patient.title}")
    typer.echo("sign in with:")
    for seeded in result.users:
        user = seeded.user
        where = user.clinic_id or (
            f"{'carer of ' if user.role == 'carer' else ''}patient {seeded.patient_id}"
            if seeded.patient_id
            else "all clinics"
        )
        note = "" if seeded.created else "  (existed already)"
        typer.echo(
            f"  {user.role:<10} {user.username:<13} password {user.password:<15} {where}{note}"
        )


def _bundle_to_case(bundle: dict[str, Any], services: Services) -> Case:
    """The Bundle as a ``Case``; each item left out is printed on stderr as a warning (ADR 0055)."""
    from b12plan.fhir import BundleError, import_bundle

    try:
        imported = import_bundle(
            bundle,
            as_of=services.clock.today(),
            knowledge=services.knowledge,
            default_jurisdiction=services.settings.default_jurisdiction,
        )
    except BundleError as exc:
        _fail([f"{e['loc'] or '(bundle)'}: {e['msg']}" for e in exc.errors])
    for w in imported.warnings:
        typer.echo(f"{w['severity']}: {w['loc'] or '(bundle)'}: {w['msg']}", err=True)
    return imported.case


def _only_clinic(services: Services) -> str:
    """With one clinic there is nothing to choose; otherwise ``--clinic`` is needed."""
    from b12plan.service.schemas import Principal

    clinics = services.auth.list_clinics(Principal.system("cli"))
    if len(clinics) == 1:
        return clinics[0].id
    known = ", ".join(c.id for c in clinics) or "none yet: `b12plan clinics add`"
    _fail(f"--clinic: required (clinics: {known})")


def _pydantic_lines(exc: Any, names: dict[str, str]) -> list[str]:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        lines.append(f"{names.get(field, field)}: {error['msg']}")
    return lines
