"""Whatever arrives, the parse layer answers with a Case or a CaseError: never a crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12plan.contract import CaseError, case_to_dict, parse_case, parse_case_json
from b12plan.core.model import Case
from b12plan.knowledge import load_knowledge

KNOWLEDGE = load_knowledge()
CONTRACT_EXAMPLE = json.loads(
    (Path(__file__).parent / "contract_example.json").read_text(encoding="utf-8")
)
UNITS = sorted(
    {u.symbol for a in KNOWLEDGE.analytes for u in a.units}
    | {u.symbol for u in KNOWLEDGE.formulary.dose_units}
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2026-02-30", "2026-01-01", "1900-01-01", "9999-12-31", "", "mg"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key or index path in a JSON document (the root excluded)."""
    out: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@st.composite
def mutated_cases(draw: st.DrawFn) -> Any:
    """The contract example with a few random edits: dropped keys, wrong types, odd units."""
    doc: Any = copy.deepcopy(CONTRACT_EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        action = draw(st.sampled_from(["drop", "replace", "unit", "text", "add_key"]))
        if action == "drop":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(json_values)
        elif action == "unit":
            parent[last] = draw(st.sampled_from(UNITS))
        elif action == "text":
            parent[last] = draw(st.text(max_size=20))
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_cases())
def test_mutated_cases_give_a_case_or_a_case_error(doc: Any) -> None:
    try:
        case = parse_case(doc, KNOWLEDGE)
    except CaseError as exc:
        assert exc.errors
        for error in exc.errors:
            assert set(error) == {"loc", "msg", "type"}
            assert error["msg"]
        return
    assert isinstance(case, Case)
    assert parse_case(json.loads(json.dumps(case_to_dict(case))), KNOWLEDGE) == case


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_gives_a_case_or_a_case_error(value: Any) -> None:
    try:
        case = parse_case(value, KNOWLEDGE)
    except CaseError as exc:
        assert exc.errors
    else:
        assert isinstance(case, Case)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_gives_a_case_or_a_case_error(text: str) -> None:
    try:
        case = parse_case_json(text, KNOWLEDGE)
    except CaseError as exc:
        assert exc.errors
    else:
        assert isinstance(case, Case)
