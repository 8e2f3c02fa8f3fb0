"""Account control and the audit check: ``b12plan users disable/enable/password``, ``b12plan
audit verify``. The operator acts as the system principal ``cli``; every change is audited."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from b12plan.cli.records import DatabaseUrl, _fail, records_services, settings_for, users_app

audit_app = typer.Typer(help="The audit log (hash-chained).")

Username = Annotated[str, typer.Argument(help="The user's sign-in name, e.g. dr.smith.")]


def register_security_commands(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@users_app.command("disable")
def users_disable(username: Username, database_url: DatabaseUrl = None) -> None:
    """Disable a user: they cannot sign in, and every session of theirs ends now."""
    from b12plan.service import Principal

    with records_services(settings_for(database_url)) as services:
        services.auth.set_active(Principal.system("cli"), username, False)
    typer.echo(f"user {username} disabled; their sessions have ended")


@users_app.command("enable")
def users_enable(username: Username, database_url: DatabaseUrl = None) -> None:
    """Enable a disabled user again."""
    from b12plan.service import Principal

    with records_services(settings_for(database_url)) as services:
        services.auth.set_active(Principal.system("cli"), username, True)
    typer.echo(f"user {username} enabled")


@users_app.command("password")
def users_password(
    username: Username,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the new password from the first line of stdin.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a user's password (12+ characters, not a common one); their sessions end."""
    from b12plan.service import Principal
    from b12plan.service.passwords import password_problem

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        _fail(f"password: {problem}")
    with records_services(settings_for(database_url)) as services:
        services.auth.set_password(Principal.system("cli"), username, password)
    typer.echo(f"password of {username} changed; their sessions have ended")


@audit_app.command("verify")
def audit_verify(database_url: DatabaseUrl = None) -> None:
    """Check the audit log's hash chain and protective triggers; exit 1 at the first break."""
    from b12plan.store.chain import verify

    with (
        records_services(settings_for(database_url)) as services,
        services.db.engine.connect() as connection,
    ):
        verdict = verify(connection)
    if verdict.intact:
        typer.echo(f"audit log intact: {verdict.checked} entries; head {verdict.head_hash}")
        return
    typer.echo(
        f"audit log BROKEN after {verdict.checked} good entries: {verdict.problem}", err=True
    )
    raise typer.Exit(1)
