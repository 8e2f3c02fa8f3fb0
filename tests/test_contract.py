"""Finding codes are listed once (the contract); each is implemented, tested and documented."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from b12plan.core.rules import CHECKS
from b12plan.knowledge import load_knowledge
from tests.scenario_support import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "contract.md"  # the project's published contract (v1.1)


def contract_codes() -> dict[str, str]:
    rows = re.findall(
        r"^\| `([A-Z0-9_]+)` \| (info|warning|critical) \|", CONTRACT.read_text(), re.MULTILINE
    )
    return dict(rows)


def test_knowledge_lists_exactly_the_contract_codes_with_their_severity() -> None:
    ours = {f.code: f.severity for f in load_knowledge().findings}
    assert ours == contract_codes()


def test_every_code_has_a_check_function() -> None:
    names = {c.__name__ for c in CHECKS}
    for f in load_knowledge().findings:
        assert f"check_{f.code.lower()}" in names


def test_every_code_fires_in_a_scenario_and_is_checked_silent_in_another() -> None:
    scenarios = load_scenarios()
    present = {c for s in scenarios for c in s["expect"].get("codes_present", [])}
    absent = {c for s in scenarios for c in s["expect"].get("codes_absent", [])}
    codes = {f.code for f in load_knowledge().findings}
    assert codes - present == set()
    assert codes - absent == set()
    assert (present | absent) - codes == set()


def test_both_jurisdictions_and_every_protocol_appear_in_scenarios() -> None:
    scenarios = load_scenarios()
    assert {s["case"].get("jurisdiction", "GB") for s in scenarios} == {"GB", "US"}
    protocols = {s["expect"].get("protocol_id") for s in scenarios}
    assert {p.id for p in load_knowledge().protocols} <= protocols


def test_clinical_rules_document_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "render_clinical_rules", ROOT / "scripts" / "render_clinical_rules.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "clinical-rules.md").read_text(encoding="utf-8")
    assert committed == module.render(), (
        "docs/clinical-rules.md is stale: python scripts/render_clinical_rules.py"
        " > docs/clinical-rules.md"
    )


def test_the_published_contract_lists_all_37_codes() -> None:
    """v1 (27) plus the 10 codes of v1.1: the contract test can never pass on an empty read."""
    assert len(contract_codes()) == 37
