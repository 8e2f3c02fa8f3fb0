"""The one shape of a field error, the one way to write a field path, and the one reading of
pydantic's errors into them.

Every channel reports bad input the same way: ``{"loc": "observations[2].unit", "msg": "...",
"type": "unknown_unit"}``, ``loc`` being the path in the contract's style (``""`` for the
document itself). The CLI prints ``loc: msg``, the REST API puts the list in problem+json
``errors``, the web app places each message next to its form field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from b12plan.contract.records import kind, listing, num


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


def field_errors(
    errors: Iterable[ErrorDetails], root: type[BaseModel] | None = None
) -> list[FieldError]:
    """Pydantic's errors in the contract's shape: a field path and a plain-language message.

    ``root`` is the model validated (an unknown key's message lists the keys allowed there).
    An error raised by a whole-record check names its field in ``ctx["field"]``.
    """
    out: list[FieldError] = []
    for error in errors:
        loc: list[str | int] = list(error["loc"])
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        if "field" in ctx:
            loc.append(ctx.pop("field"))
        out.append(
            field_error(
                format_loc(loc),
                error_message(error["type"], error["msg"], error.get("input"), ctx, loc, root),
                error["type"],
            )
        )
    return out


def error_message(
    type_: str,
    default: str,
    value: object,
    ctx: dict[str, Any],
    loc: Sequence[str | int],
    root: type[BaseModel] | None = None,
) -> str:
    """One pydantic error as the contract words it (the value it got, not Python's jargon)."""
    if type_ == "missing":
        return "required"
    if type_ == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        return "unknown key" + (f" (allowed: {listing(allowed)})" if allowed else "")
    if type_ in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected an object, got {kind(value)}"
    if type_ == "list_type":
        return f"expected a list, got {kind(value)}"
    if type_ == "string_type":
        return f"expected text, got {kind(value)}"
    if type_ == "float_type":
        return f"expected a number, got {kind(value)}"
    if type_ == "int_type":
        return f"expected a whole number, got {kind(value)}"
    if type_ == "greater_than":
        return f"must be greater than {num(ctx['gt'])}, got {kind(value)}"
    if type_ == "greater_than_equal":
        return f"must not be negative, got {kind(value)}"
    if type_ == "less_than_equal":
        return f"must be at most {num(ctx['le'])}, got {kind(value)}"
    if type_ == "finite_number":
        return "must be a finite number"
    if type_ == "literal_error":
        return f"expected one of {ctx.get('expected', '')}, got {kind(value)}"
    if type_ == "string_too_short":
        return "must not be empty"
    if type_ == "string_too_long":
        return f"too long (at most {ctx.get('max_length')} characters)"
    if default.startswith("Input should"):
        return "i" + default[1:]
    return default


def _allowed_keys(root: type[BaseModel] | None, loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys the object at ``loc`` may have, found by walking the models along the path."""
    model: Any = root
    if model is None:
        return ()
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ()
        model = _model_in(field.annotation)
        if model is None:
            return ()
    return tuple(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model``, ``Model | None`` or ``list[Model]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
