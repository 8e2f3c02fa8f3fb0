"""Load and validate the clinical knowledge base shipped with b12plan.

The TOML files beside this module are the single home of clinical numbers. They are read once,
checked (unknown keys, types, cross-references, invariants) and handed to core as the frozen
``b12plan.core.knowledge.Knowledge``. Every file carries the same ``version``; that version is
recorded in each assessment.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from b12plan.core.knowledge import Knowledge, KnowledgeError

FILES = (
    "sources",
    "protocols",
    "formulary",
    "analytes",
    "vocabulary",
    "rules",
    "findings",
    "monitoring",
)
_HEADER_KEYS = ("version", "reviewed_on", "source")
_BODY_KEYS = {
    "sources": {"entry"},
    "protocols": {"protocol"},
    "formulary": {"product", "dose_unit", "implausible_factor", "implausible_source"},
    "analytes": {"analyte", "anaemia"},
    "vocabulary": {"symptom_statuses", "causes", "symptoms", "medications", "adverse_events"},
    "rules": {"timing"},
    "findings": {"finding"},
    "monitoring": {"item"},
}


@cache
def load_knowledge() -> Knowledge:
    """The shipped knowledge base (cached: it is immutable)."""
    root = resources.files(__package__)
    texts = {name: root.joinpath(f"{name}.toml").read_text(encoding="utf-8") for name in FILES}
    return parse_knowledge(texts)


def load_knowledge_from(directory: Path) -> Knowledge:
    """A knowledge base from another folder (a clinic's reviewed copy, or a test's edit)."""
    return parse_knowledge(
        {name: (directory / f"{name}.toml").read_text(encoding="utf-8") for name in FILES}
    )


def parse_knowledge(texts: dict[str, str]) -> Knowledge:
    """Validate the files' text into ``Knowledge``; errors name the file and the entry."""
    docs: dict[str, dict[str, Any]] = {}
    for name in FILES:
        try:
            docs[name] = tomllib.loads(texts[name])
        except tomllib.TOMLDecodeError as exc:
            raise KnowledgeError(f"{name}.toml: {exc}") from exc
        for key in _HEADER_KEYS:
            if key not in docs[name]:
                raise KnowledgeError(f"{name}.toml: missing top-level {key!r}")
        for key in sorted(set(docs[name]) - set(_HEADER_KEYS) - _BODY_KEYS[name]):
            raise KnowledgeError(f"{name}.toml: unknown key {key!r}")
    version = docs["sources"]["version"]
    for name, doc in docs.items():
        if doc["version"] != version:
            raise KnowledgeError(
                f"{name}.toml: version {doc['version']!r} differs from sources.toml {version!r}"
            )
    for protocol in docs["protocols"].get("protocol", []):
        for stage in protocol.get("loading", []):
            if stage.get("doses") == "open":  # TOML has no null: "open" means until response
                stage["doses"] = None
    raw = {
        "version": version,
        "reviewed_on": docs["sources"]["reviewed_on"],
        "sources": docs["sources"].get("entry", []),
        "protocols": docs["protocols"].get("protocol", []),
        "formulary": {
            "products": docs["formulary"].get("product", []),
            "dose_units": docs["formulary"].get("dose_unit", []),
            "implausible_factor": docs["formulary"].get("implausible_factor"),
            "implausible_source": docs["formulary"].get("implausible_source"),
        },
        "analytes": docs["analytes"].get("analyte", []),
        "anaemia": docs["analytes"].get("anaemia", []),
        "timings": docs["rules"].get("timing", []),
        "causes": docs["vocabulary"].get("causes", []),
        "symptoms": docs["vocabulary"].get("symptoms", []),
        "symptom_statuses": docs["vocabulary"].get("symptom_statuses", []),
        "medications": docs["vocabulary"].get("medications", []),
        "adverse_events": docs["vocabulary"].get("adverse_events", []),
        "findings": docs["findings"].get("finding", []),
        "monitoring": docs["monitoring"].get("item", []),
    }
    _reject_unknown_keys(Knowledge, raw, "knowledge")
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise KnowledgeError(f"{where}: {first['msg']}") from exc


_ADAPTER: TypeAdapter[Knowledge] = TypeAdapter(Knowledge)


def _reject_unknown_keys(cls: Any, value: Any, path: str) -> None:
    """Pydantic ignores extra keys on plain dataclasses; a typo in clinical data must not pass."""
    if dataclasses.is_dataclass(cls) and isinstance(value, dict):
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        for key in value:
            if key not in names:
                raise KnowledgeError(f"{path}: unknown key {key!r}")
            _reject_unknown_keys(hints[key], value[key], f"{path}.{key}")
        return
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if dataclasses.is_dataclass(arg):
                _reject_unknown_keys(arg, value, path)
    elif origin is tuple and args and isinstance(value, list):
        for i, item in enumerate(value):
            _reject_unknown_keys(args[0], item, f"{path}[{i}]")


__all__ = [
    "Knowledge",
    "KnowledgeError",
    "load_knowledge",
    "load_knowledge_from",
    "parse_knowledge",
]
