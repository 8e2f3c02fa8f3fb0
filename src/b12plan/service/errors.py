"""What can go wrong in a use case, as values the entry points render (HTTP, CLI, web).

Each error carries a stable ``type`` slug, a one-line ``title`` and a ``detail``; invalid input
also carries ``errors``, one ``{"loc", "msg", "type"}`` per problem, ``loc`` being the field path.
The API turns these into problem+json in one place (``b12plan.api.problems``). The field error
shape and its path formatter are the contract's (``b12plan.contract.errors``), re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

from b12plan.contract.errors import (
    FieldError,
    error_message,
    field_error,
    field_errors,
    format_loc,
)


class ServiceError(Exception):
    type: str = "error"
    title: str = "Request failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ServiceError):
    type = "invalid-input"
    title = "Invalid input"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__(
            detail or "; ".join(f"{e['loc'] or '(document)'}: {e['msg']}" for e in self.errors)
        )


class Unauthenticated(ServiceError):
    type = "unauthenticated"
    title = "Not signed in"


class Forbidden(ServiceError):
    type = "forbidden"
    title = "Not allowed"


class NotFound(ServiceError):
    type = "not-found"
    title = "Not found"


class TooManyAttempts(ServiceError):
    """Sign-in refused for now: too many recent failures for this account or address."""

    type = "too-many-attempts"
    title = "Too many sign-in attempts"

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(
            detail or f"too many failed sign-ins; try again in {retry_after_seconds} seconds"
        )
        self.retry_after = retry_after_seconds


class Conflict(ServiceError):
    """The write was based on a version that is no longer current (or would duplicate one)."""

    type = "conflict"
    title = "Conflict"

    def __init__(self, detail: str, current_version: int | None = None) -> None:
        super().__init__(detail)
        self.current_version = current_version


__all__ = [
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "ServiceError",
    "Unauthenticated",
    "error_message",
    "field_error",
    "field_errors",
    "format_loc",
]
