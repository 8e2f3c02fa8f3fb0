"""``b12plan reminders run|preview`` and the clinic's reminder address.

``run`` is what cron or a systemd timer calls: it is idempotent (a second run the same day
sends nothing new) and safe beside another runner (rows are claimed under a lease). Exit 0 when
every due row was sent or left for later (quiet hours, backoff); 1 when a delivery failed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from b12plan.cli.records import DatabaseUrl, _fail, records_services, settings_for

reminders_app = typer.Typer(help="Patient reminders: plan, queue and send (email).")

AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="The day to run for, YYYY-MM-DD (default: today).", show_default=False
    ),
]


def _day(as_of: str | None) -> dt.date | None:
    from b12plan.contract import parse_iso_date

    if as_of is None:
        return None
    try:
        return parse_iso_date(as_of)
    except ValueError as exc:
        _fail(f"--as-of: {exc}")


@reminders_app.command("run")
def run(as_of: AsOf = None, database_url: DatabaseUrl = None) -> None:
    """Queue the reminders the plans call for and send every one that is due."""
    day = _day(as_of)
    with records_services(settings_for(database_url)) as services:
        if services.settings.reminders.smtp is None:
            typer.echo(
                "no SMTP server configured (B12PLAN_SMTP_HOST): reminders are queued, not sent",
                err=True,
            )
        report = services.reminders.run(day)
    typer.echo(
        f"reminders {report.as_of.isoformat()}: {report.patients} patients,"
        f" {report.enqueued} queued, {report.cancelled} cancelled, {report.sent} sent,"
        f" {report.failed} to retry, {report.given_up} given up, {report.quiet} in quiet hours,"
        f" {report.taken_by_others} held by another runner"
    )
    for line in report.errors:
        typer.echo(f"  skipped {line}", err=True)
    if report.failed or report.given_up:
        raise typer.Exit(1)


@reminders_app.command("preview")
def preview(
    as_of: AsOf = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days ahead.")] = 7,
    database_url: DatabaseUrl = None,
) -> None:
    """The reminders each patient would get in the next DAYS days (nothing is queued or sent)."""
    from b12plan.service import Principal, ServiceError

    with records_services(settings_for(database_url)) as services:
        day = _day(as_of) or services.clock.today()
        end = day + dt.timedelta(days=days - 1)
        who = Principal.system("reminders-preview")
        patients = services.records.list_patients(who, limit=200)
        typer.echo(f"reminders from {day.isoformat()} to {end.isoformat()}:")
        lines: list[tuple[dt.date, str, str]] = []
        offset = 0
        while True:
            for patient in patients.items:
                try:
                    plan = services.reminders.plan(who, patient.id, day)
                except ServiceError as exc:
                    typer.echo(f"  {patient.id}: skipped ({exc.detail})")
                    continue
                for reminder in plan:
                    if reminder.send_on <= end:
                        to = " + ".join(reminder.audience)
                        text = (
                            f"{reminder.title} (for {reminder.target.isoformat()}; to {to})"
                            f"  {patient.display_name}"
                        )
                        lines.append((reminder.send_on, patient.display_name, text))
            offset += len(patients.items)
            if offset >= patients.total or not patients.items:
                break
            patients = services.records.list_patients(who, limit=200, offset=offset)
        for send_on, _, text in sorted(lines):
            typer.echo(f"  {send_on.isoformat()}  {text}")
        if not lines:
            typer.echo("  none")


@reminders_app.command("clinic-email")
def clinic_email(
    clinic_id: Annotated[str, typer.Argument(help="The clinic's id.")],
    email: Annotated[
        str | None, typer.Argument(help="Address for overdue copies; omit to clear.")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Where a clinic's copies of overdue reminders go."""
    from b12plan.service import Principal

    with records_services(settings_for(database_url)) as services:
        services.reminders.set_clinic_email(Principal.system("cli"), clinic_id, email)
    typer.echo(f"clinic {clinic_id}: overdue reminders to {email or 'nobody'}")


carers_app = typer.Typer(help="Carers: link a carer account to a patient (consent recorded).")


@carers_app.command("link")
def carers_link(
    carer: Annotated[str, typer.Argument(help="The carer's username (role carer).")],
    patient_id: Annotated[str, typer.Argument(help="The patient's id.")],
    consent_note: Annotated[
        str, typer.Option("--consent-note", help="How the patient consented (required).")
    ],
    email: Annotated[str | None, typer.Option(help="Where the carer's reminder emails go.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Link a carer to a patient on the clinic's authority, recording the patient's consent."""
    from b12plan.service import Principal

    with records_services(settings_for(database_url)) as services:
        link = services.carers.link_by_clinic(
            Principal.system("cli"), carer, patient_id, consent_note=consent_note, email=email
        )
    typer.echo(f"carer {link.username} linked to patient {link.patient_id}")
