"""Shared fixtures: the shipped knowledge base and the contract's example case."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from b12plan.core.knowledge import Knowledge
from b12plan.knowledge import load_knowledge

CONTRACT_EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "contract_example.json").read_text(encoding="utf-8")
)
"""The example case printed in the contract (shared/contract.md), verbatim."""


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge()


@pytest.fixture
def doc() -> dict[str, Any]:
    """A fresh, mutable copy of the contract example."""
    return copy.deepcopy(CONTRACT_EXAMPLE)
