"""Count the contract's parses: adapters hand each other ``Case`` objects, so a request parses
each document it receives once, at its edge, and never a case another adapter already read."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from b12plan import contract
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every document ``contract.parse_case`` is given from now on (through ``parse_case_json``
    too), whichever module calls it: each module's own reference to the function is replaced."""
    seen: list[Any] = []
    real = contract.parse_case

    def counting(data: object, knowledge: Knowledge) -> Case:
        seen.append(data)
        return real(data, knowledge)

    for name, module in list(sys.modules.items()):
        if name.startswith("b12plan") and getattr(module, "parse_case", None) is real:
            monkeypatch.setattr(module, "parse_case", counting)
    return seen
