"""A Bundle validated one entry at a time: the same result and the same errors as the whole
validation, with only one entry's model alive at a time (ADR 0069)."""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from pydantic import ValidationError

from b12plan.contract import parse_case
from b12plan.fhir import case_to_bundle
from b12plan.fhir.by_entry import validate_by_entry
from b12plan.fhir.importing import validate_bundle
from b12plan.knowledge import load_knowledge

HERE = Path(__file__).parent
K = load_knowledge()


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _exported(path: Path) -> dict[str, Any]:
    return case_to_bundle(parse_case(_json(path), K), knowledge=K)


def _bundles() -> list[tuple[str, dict[str, Any]]]:
    ours = [(p.stem, _exported(p)) for p in HERE.glob("cases/*.json")]
    theirs = [(p.stem, _json(p)) for p in HERE.glob("ehr/*.json")]
    return sorted(ours + theirs)


BUNDLES = _bundles()


def _whole(data: dict[str, Any]) -> dict[str, Any]:
    dumped: dict[str, Any] = Bundle.model_validate(data).model_dump(mode="json", exclude_none=True)
    return dumped


@pytest.mark.parametrize(("name", "bundle"), BUNDLES, ids=[n for n, _ in BUNDLES])
def test_an_exported_or_ehr_bundle_reads_the_same_entry_by_entry(
    name: str, bundle: dict[str, Any]
) -> None:
    assert validate_bundle(bundle) == _whole(bundle)


def _break(bundle: dict[str, Any], how: str) -> dict[str, Any]:
    bad = copy.deepcopy(bundle)
    if how in ("entry", "both"):
        bad["entry"][1]["resource"]["status"] = 42
        bad["entry"][2]["resource"]["subject"] = {"reference": ["not", "a", "string"]}
    if how in ("bundle", "both"):
        bad["timestamp"] = "yesterday"
    if how == "no-type":
        del bad["type"]
    if how == "no-type-and-entry":
        del bad["type"]
        bad["entry"][1]["resource"]["status"] = 42
    if how == "unknown-element":
        bad["entry"][0]["resource"]["favouriteColour"] = "blue"
    if how == "null-entry":
        bad["entry"].append(None)
    if how == "entry-not-a-list":
        bad["entry"] = bad["entry"][0]
    if how == "unknown-contained":
        bad["entry"][1]["resource"]["contained"] = [{"resourceType": "NoSuchThing"}]
    return bad


BREAKS = [
    "entry",
    "bundle",
    "both",
    "no-type",
    "no-type-and-entry",
    "unknown-element",
    "null-entry",
    "entry-not-a-list",
    "unknown-contained",
]


def _raised(call: Any) -> str:
    try:
        call()
    except ValidationError as exc:
        return json.dumps(exc.errors(include_url=False), default=str)
    except (KeyError, TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("no error")


@pytest.mark.parametrize("how", BREAKS)
def test_a_broken_bundle_gets_the_whole_validations_errors(how: str) -> None:
    bad = _break(_exported(HERE / "cases" / "every-field-gb.json"), how)
    by_entry = _raised(lambda: validate_by_entry(bad, lambda entry: None))
    assert by_entry == _raised(lambda: Bundle.model_validate(bad))


def test_only_one_entrys_model_is_alive_at_a_time() -> None:
    """The whole Bundle's model would hold every entry's model at once; entry by entry, each is
    gone before the next is read, so the collector never has the whole Bundle to walk."""
    bundle = _exported(HERE / "cases" / "every-field-gb.json")
    alive: list[int] = []

    def keep(entry: BundleEntry) -> str:
        alive.append(sum(isinstance(o, BundleEntry) for o in gc.get_objects()))
        return str(entry.fullUrl)

    shell, kept = validate_by_entry(bundle, keep)
    assert len(kept) == len(bundle["entry"]) > 10
    assert alive == [1] * len(kept)
    assert shell.entry is None and shell.type == "collection"
