"""``Bundle.model_validate`` one entry at a time, so a large Bundle never exists as one model.

Why (issue 13, ADR 0069): the model of a 3,000-entry Bundle is about 75,000 objects, all alive
until the last entry is read. While they live, every full pass of Python's cyclic garbage
collector walks them with the GIL held, and a large import sets off several such passes: each
one stopped every other request of the server. Validated entry by entry, only one entry's model
(about 25 objects) is alive at a time; what the caller keeps of it (its JSON, or nothing) is
its own choice. fhir.resources validates each nested resource in its own call either way, so
the GIL changes hands just as often as before.

The result and the errors are those of the whole validation: when any part fails, the whole
Bundle is validated as before, so the errors (their paths and order) are exactly
``Bundle.model_validate``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from pydantic import ValidationError

T = TypeVar("T")


def validate_by_entry(
    data: Mapping[str, Any], keep: Callable[[BundleEntry], T]
) -> tuple[Bundle, list[T]]:
    """The Bundle without its entries, and ``keep(entry)`` for each entry, in order.

    Raises what ``Bundle.model_validate(data)`` raises when ``data`` is not a valid Bundle.
    """
    entries = data.get("entry")
    if entries is None or (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
        try:
            shell = Bundle.model_validate({k: v for k, v in data.items() if k != "entry"})
            return shell, [keep(BundleEntry.model_validate(e)) for e in entries or ()]
        except (ValidationError, KeyError, TypeError, ValueError):
            pass  # the whole validation below names every problem, as it always has
    whole = Bundle.model_validate(data)
    kept = [keep(entry) for entry in whole.entry or ()]
    return whole.model_copy(update={"entry": None}), kept
