"""Reminder settings from the environment (``B12PLAN_SMTP_*``, ``B12PLAN_REMINDER_*``).

- ``B12PLAN_SMTP_HOST`` (no host: reminders are planned and queued but not sent),
  ``B12PLAN_SMTP_PORT`` (587 with STARTTLS, else 25), ``B12PLAN_SMTP_STARTTLS`` (1/0),
  ``B12PLAN_SMTP_USERNAME``, ``B12PLAN_SMTP_PASSWORD``, ``B12PLAN_SMTP_SENDER``.
- ``B12PLAN_REMINDER_LEASE_SECONDS`` (300): how long a claimed row is held before another runner
  may take it over (longer than one SMTP conversation can take).
- ``B12PLAN_REMINDER_MAX_ATTEMPTS`` (5), ``B12PLAN_REMINDER_BACKOFF_SECONDS`` (60, doubling).
- ``B12PLAN_REMINDER_INTERVAL_SECONDS`` (900): how often ``serve --reminders`` runs.
- ``B12PLAN_PUBLIC_URL``: the address people reach the web app at (links in emails, feed URLs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from b12plan.reminders.mail import SmtpSettings


class ReminderSettingsError(ValueError):
    """A reminder setting is unusable; the message names the variable."""


@dataclass(frozen=True)
class ReminderSettings:
    smtp: SmtpSettings | None = None
    lease_seconds: float = 300.0
    max_attempts: int = 5
    backoff_seconds: float = 60.0
    interval_seconds: float = 900.0
    public_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReminderSettings:
        def number(name: str, default: float, low: float, high: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ReminderSettingsError(f"{name}: expected a number") from None
            if not low <= value <= high:
                raise ReminderSettingsError(f"{name}: must be from {low:g} to {high:g}")
            return value

        smtp = None
        host = env.get("B12PLAN_SMTP_HOST", "").strip()
        starttls_raw = env.get("B12PLAN_SMTP_STARTTLS", "0").strip().lower()
        if starttls_raw not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ReminderSettingsError("B12PLAN_SMTP_STARTTLS: expected 1 or 0")
        starttls = starttls_raw in ("1", "true", "yes")
        if host:
            smtp = SmtpSettings(
                host=host,
                port=int(number("B12PLAN_SMTP_PORT", 587 if starttls else 25, 1, 65535)),
                starttls=starttls,
                username=env.get("B12PLAN_SMTP_USERNAME") or None,
                password=env.get("B12PLAN_SMTP_PASSWORD") or None,
                sender=env.get("B12PLAN_SMTP_SENDER") or SmtpSettings.sender,
                timeout_seconds=number("B12PLAN_SMTP_TIMEOUT_SECONDS", 30, 1, 600),
            )
        public = (env.get("B12PLAN_PUBLIC_URL") or "").strip().rstrip("/") or None
        if public is not None and not public.startswith(("https://", "http://")):
            raise ReminderSettingsError("B12PLAN_PUBLIC_URL: expected an http(s) URL")
        return cls(
            smtp=smtp,
            lease_seconds=number("B12PLAN_REMINDER_LEASE_SECONDS", 300, 1, 86400),
            max_attempts=int(number("B12PLAN_REMINDER_MAX_ATTEMPTS", 5, 1, 100)),
            backoff_seconds=number("B12PLAN_REMINDER_BACKOFF_SECONDS", 60, 0, 86400),
            interval_seconds=number("B12PLAN_REMINDER_INTERVAL_SECONDS", 900, 1, 86400),
            public_url=public,
        )
