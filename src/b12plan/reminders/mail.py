"""Email over SMTP (stdlib ``smtplib``/``email``): plain text with an HTML alternative.

The ``Message-ID`` comes from the outbox row, so a message sent again after a crash carries the
same id as the first (see ``reminders.outbox``).
"""

from __future__ import annotations

import datetime as dt
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from b12plan.reminders.text import Message


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "b12plan <reminders@localhost>"
    timeout_seconds: float = 30.0


class DeliveryError(Exception):
    """The SMTP server did not take the message (the message says what it answered)."""


def build_email(
    message: Message, *, to: str, sender: str, message_id: str, sent_at: dt.datetime
) -> EmailMessage:
    """The email: ``text/plain`` with a ``text/html`` alternative; ``Date`` in the recipient's
    zone (``sent_at`` carries it)."""
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = sender
    email["To"] = to
    email["Message-ID"] = message_id
    email["Date"] = format_datetime(sent_at)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


class SmtpMailer:
    """One SMTP conversation per message: simple, and a failure never poisons the next one."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, email: EmailMessage) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(email)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryError(f"recipients refused: {sorted(refused)}")
