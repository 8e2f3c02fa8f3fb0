"""Request parameters shared by the routers: ids, dates, and the If-Match version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query

from b12plan.service.errors import InvalidInput, ServiceError, field_error
from b12plan.service.schemas import IsoDate

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

PatientId = Annotated[str, Path(pattern=ID_PATTERN, description="The patient's id.")]
RecordId = Annotated[str, Path(pattern=ID_PATTERN, description="The record's id.")]
AsOf = Annotated[
    IsoDate | None,
    Query(description="Evaluation date, YYYY-MM-DD (default: today)."),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The version you edited, as its ETag (e.g. "3"). Required for changes.',
    ),
]


class PreconditionRequired(ServiceError):
    """A change was sent without saying which version it was based on."""

    type = "precondition-required"
    title = "If-Match required"


class PayloadTooLarge(ServiceError):
    type = "payload-too-large"
    title = "Request body too large"


def expected_version(if_match: str | None) -> int:
    """The version an edit is based on, from ``If-Match: "3"`` (or ``W/"3"``, or ``3``)."""
    if if_match is None:
        raise PreconditionRequired(
            "send If-Match with the version you edited (the ETag of the record you read);"
            " it prevents overwriting someone else's change"
        )
    value = if_match.strip()
    value = value.removeprefix("W/").strip('"')
    if not value.isascii() or not value.isdigit() or not 0 < len(value) <= 9 or int(value) < 1:
        raise InvalidInput(
            [
                field_error(
                    "header.If-Match",
                    f'expected a record version such as "3", got {if_match[:40]!r}',
                    "if_match",
                )
            ]
        )
    return int(value)


def etag(version: int) -> str:
    return f'"{version}"'
