"""Load and validate the clinical knowledge base shipped with b12plan.

The TOML files beside this module are the single home of clinical numbers. They are read once,
checked (unknown keys, types, cross-references, invariants) and handed to core as the frozen
``b12plan.core.knowledge.Knowledge``. Every file carries the same ``version``; that version is
recorded in each assessment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import tempfile
import types
import typing
from datetime import date, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import b12plan.core.knowledge as core_knowledge
from b12plan.core.knowledge import Knowledge, KnowledgeError

KNOWLEDGE_DIR_ENV = "B12PLAN_KNOWLEDGE_DIR"
"""The variable naming a clinic's reviewed copy of these files (read by the composition roots)."""

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
    "vocabulary": {
        "symptom_statuses",
        "symptom_status_precedence",
        "reporters",
        "decisions",
        "causes",
        "symptoms",
        "medications",
        "adverse_events",
    },
    "rules": {"timing"},
    "findings": {"finding"},
    "monitoring": {"item"},
}


COMPILED_DIR = Path(__file__).with_name("__pycache__")
"""Where the install keeps the shipped knowledge base compiled (``compile_knowledge``)."""


@cache
def load_knowledge() -> Knowledge:
    """The shipped knowledge base (cached: it is immutable).

    Read from the compiled form the install wrote when it matches these very files and this
    very loader (``compiled_key``), else parsed and validated from the TOML: the same object
    either way, without the TOML parse on every start of the CLI (ADR 0058).
    """
    texts = shipped_texts()
    compiled = read_compiled(COMPILED_DIR, texts)
    return compiled if compiled is not None else parse_knowledge(texts)


def shipped_texts() -> dict[str, str]:
    """The text of each shipped knowledge file, by name."""
    root = resources.files(__package__)
    return {name: root.joinpath(f"{name}.toml").read_text(encoding="utf-8") for name in FILES}


def compiled_key(texts: dict[str, str]) -> str:
    """What a compiled knowledge base must match: the files and the code that validated them.

    A sha256 of every file's text, of this loader's source and of ``b12plan.core.knowledge``
    (the classes and their checks), and of the interpreter's cache tag. Editing a clinical
    number, a check or a class gives another key, so a compiled form built from anything else
    is never read: it cannot serve stale knowledge.
    """
    digest = hashlib.sha256(str(sys.implementation.cache_tag).encode())
    for source in (__file__, core_knowledge.__file__):
        digest.update(Path(str(source)).read_bytes())
    for name in FILES:
        text = texts[name].encode("utf-8")
        digest.update(f"\0{name}\0{len(text)}\0".encode())
        digest.update(text)
    return digest.hexdigest()


def _compiled_path(folder: Path, key: str) -> Path:
    return folder / f"knowledge-{key}.pickle"


def read_compiled(folder: Path, texts: dict[str, str]) -> Knowledge | None:
    """The knowledge base compiled from ``texts`` by ``write_compiled``, or ``None``.

    ``None`` when there is none for this key, or when the file is damaged or holds anything
    but a ``Knowledge`` stored under this key; the caller then parses the TOML, so a bad
    compiled file costs time, never correctness. The folder is the package's own, written only
    by the install: the same trust as the bytecode beside it.
    """
    try:
        key = compiled_key(texts)
        with _compiled_path(folder, key).open("rb") as file:
            stored = pickle.load(file)
    except Exception:  # absent, unreadable or damaged: parse the TOML instead
        return None
    if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key):
        return None
    knowledge = stored[1]
    return knowledge if isinstance(knowledge, Knowledge) else None


def write_compiled(folder: Path, texts: dict[str, str]) -> Path:
    """Validate ``texts`` and store the result for ``read_compiled``; other keys' files go.

    Written to a temporary file and renamed, so a reader sees a whole file or none.
    """
    knowledge = parse_knowledge(texts)
    key = compiled_key(texts)
    folder.mkdir(parents=True, exist_ok=True)
    target = _compiled_path(folder, key)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".knowledge-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            pickle.dump((key, knowledge), file, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(temporary, 0o644)  # readable by every user of the install, like its bytecode
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    for other in folder.glob("knowledge-*.pickle"):
        if other != target:
            other.unlink(missing_ok=True)
    return target


def compile_knowledge() -> Path:
    """Compile the shipped knowledge base beside it (run by ``make`` at install, like bytecode)."""
    return write_compiled(COMPILED_DIR, shipped_texts())


def load_knowledge_from(directory: Path) -> Knowledge:
    """A knowledge base from another folder (a clinic's reviewed copy, or a test's edit).

    Checked whole, like the shipped one: a folder that is absent, or lacks or cannot read one of
    the files, raises ``KnowledgeError`` naming the path, so a clinic's misconfiguration stops
    the program at start-up instead of falling back silently to the shipped numbers.
    """
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        raise KnowledgeError(f"{directory}: {what}")
    texts: dict[str, str] = {}
    for name in FILES:
        path = directory / f"{name}.toml"
        try:
            texts[name] = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            expected = ", ".join(f"{n}.toml" for n in FILES)
            raise KnowledgeError(
                f"{path}: missing (a knowledge directory holds {expected})"
            ) from None
        except UnicodeDecodeError:
            raise KnowledgeError(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise KnowledgeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return parse_knowledge(texts)
    except KnowledgeError as exc:
        raise KnowledgeError(f"{directory}: {exc}") from None


def load_knowledge_at(directory: Path | None) -> Knowledge:
    """The shipped knowledge base, or the copy in ``directory`` (``B12PLAN_KNOWLEDGE_DIR``).

    Only the composition roots (``b12plan.app``, the CLI) call this; everything else is handed
    the ``Knowledge`` they chose.
    """
    return load_knowledge() if directory is None else load_knowledge_from(directory)


def parse_knowledge(texts: dict[str, str]) -> Knowledge:
    """Validate the files' text into ``Knowledge``; errors name the file and the entry."""
    import tomllib  # here, not at import: a compiled knowledge base needs no TOML parser

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
        protocol.setdefault("loading", [])  # oral protocols have no loading course
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
        "symptom_status_precedence": docs["vocabulary"].get("symptom_status_precedence", []),
        "reporters": docs["vocabulary"].get("reporters", []),
        "decisions": docs["vocabulary"].get("decisions", []),
        "findings": docs["findings"].get("finding", []),
        "monitoring": docs["monitoring"].get("item", []),
    }
    knowledge: Knowledge = build(Knowledge, raw, "knowledge")
    return knowledge


def build(cls: Any, value: Any, path: str) -> Any:
    """Construct ``cls`` (a frozen dataclass tree) from TOML data, checking every key and type.

    Standard library only, so loading the knowledge base costs milliseconds; an error names the
    path of the offending entry. ``__post_init__`` checks run as each dataclass is built.
    """
    origin, args = typing.get_origin(cls), typing.get_args(cls)
    if dataclasses.is_dataclass(cls) and isinstance(cls, type):
        if not isinstance(value, dict):
            raise KnowledgeError(f"{path}: expected a table, got {type(value).__name__}")
        hints, fields = _shape(cls)
        for key in value:
            if key not in fields:
                raise KnowledgeError(f"{path}: unknown key {key!r}")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = build(hints[name], value[name], f"{path}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KnowledgeError(f"{path}: missing {name!r}")
        try:
            return cls(**kwargs)
        except KnowledgeError:
            raise
        except (TypeError, ValueError) as exc:
            raise KnowledgeError(f"{path}: {exc}") from exc
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        return build(kinds[0], value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise KnowledgeError(f"{path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(build(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise KnowledgeError(f"{path}: expected {len(args)} items, got {len(value)}")
        return tuple(
            build(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    return _scalar(cls, value, path)


@cache
def _shape(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    """A dataclass's resolved field types and fields, worked out once per class.

    ``typing.get_type_hints`` compiles every string annotation on each call; the knowledge base
    builds some 1,000 objects of a few dozen classes, so resolving once per class halves the
    time ``load_knowledge`` takes (CLI start-up, ADR 0058).
    """
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def _scalar(cls: Any, value: Any, path: str) -> Any:
    if cls is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if cls is date and isinstance(value, date) and not isinstance(value, datetime):
        return value
    if cls in (str, int, bool) and type(value) is cls:
        return value
    raise KnowledgeError(
        f"{path}: expected {getattr(cls, '__name__', cls)}, got {type(value).__name__} {value!r}"
    )


__all__ = [
    "COMPILED_DIR",
    "FILES",
    "KNOWLEDGE_DIR_ENV",
    "Knowledge",
    "KnowledgeError",
    "compile_knowledge",
    "compiled_key",
    "load_knowledge",
    "load_knowledge_at",
    "load_knowledge_from",
    "parse_knowledge",
    "read_compiled",
    "shipped_texts",
    "write_compiled",
]
