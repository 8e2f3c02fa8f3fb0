"""Is it a FHIR R4 Bundle at all, and one that carries records? (400 when not.)"""

from __future__ import annotations

from collections.abc import Sequence

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from pydantic import ValidationError

from b12plan.fhir.by_entry import validate_by_entry
from b12plan.fhir.importing.context import Json
from b12plan.fhir.outcome import NOT_SUPPORTED, STRUCTURE, BundleError, error

BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset", "document")
"""Bundles that carry resources to read (not history, message or responses)."""


def validate_bundle(data: object) -> Json:
    """Check ``data`` is a valid FHIR R4 Bundle we read; return it as normalised FHIR JSON."""
    if not isinstance(data, dict):
        raise BundleError([error("", "expected a FHIR Bundle (a JSON object)", STRUCTURE)])
    if data.get("resourceType") != "Bundle":
        raise BundleError(
            [
                error(
                    "resourceType",
                    f"expected 'Bundle', got {data.get('resourceType')!r}",
                    STRUCTURE,
                )
            ]
        )
    problems = []
    entries = data.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            kind = resource.get("resourceType")
            if not isinstance(kind, str) or not _known_resource_type(kind):
                problems.append(
                    error(
                        f"entry[{i}].resource.resourceType",
                        f"unknown FHIR R4 resource type {kind!r}",
                        STRUCTURE,
                    )
                )
    if problems:
        raise BundleError(problems)
    try:
        model, entries = validate_by_entry(data, _json)
    except ValidationError as exc:
        raise BundleError(
            [
                error(_pydantic_path(e["loc"]), _pydantic_message(e["msg"], e["type"]), STRUCTURE)
                for e in exc.errors(include_url=False)
            ]
        ) from None
    except (KeyError, TypeError, ValueError) as exc:  # e.g. an unknown contained resource type
        raise BundleError([error("", f"not a valid FHIR R4 Bundle: {exc}", STRUCTURE)]) from None
    if model.type not in BUNDLE_TYPES:
        raise BundleError(
            [
                error(
                    "type",
                    f"a {model.type!r} Bundle carries no record to read"
                    f" (accepted: {', '.join(BUNDLE_TYPES)})",
                    NOT_SUPPORTED,
                )
            ]
        )
    dumped: Json = _json(model)
    if entries:
        dumped["entry"] = entries
    return dumped


def _json(model: Bundle | BundleEntry) -> Json:
    """A validated part as normalised FHIR JSON (what the readers read)."""
    dumped: Json = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _known_resource_type(name: str) -> bool:
    try:
        get_fhir_model_class(name)
    except ValueError:
        return False
    return name not in ("Element", "BackboneElement", "Resource", "DomainResource")


def _pydantic_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "json-or-python")) or "[" in part:
            continue  # validator wrapper names, not FHIR elements
        else:
            text += f".{part}" if text else part
    return text


def _pydantic_message(msg: str, type_: str) -> str:
    if type_ == "extra_forbidden":
        return "unknown element"
    return msg.removeprefix("Value error, ")
