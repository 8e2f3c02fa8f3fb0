"""The one shape of a field error, and the one way to write a field path.

Every channel reports bad input the same way: ``{"loc": "observations[2].unit", "msg": "...",
"type": "unknown_unit"}``, ``loc`` being the path in the contract's style (``""`` for the
document itself). The CLI prints ``loc: msg``, the REST API puts the list in problem+json
``errors``, the web app places each message next to its form field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict


class FieldError(TypedDict):
    loc: str
    msg: str
    type: str


def field_error(loc: str, msg: str, type_: str) -> FieldError:
    return {"loc": loc, "msg": msg, "type": type_}


def format_loc(parts: Sequence[str | int]) -> str:
    """``("observations", 2, "unit")`` as ``observations[2].unit`` (the contract's path style)."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
