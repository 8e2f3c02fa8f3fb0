"""Layering: the clinical core is pure.

Why: core must stay deterministic and auditable (no clock, no I/O, no third-party behaviour), and
every adapter (CLI, API, FHIR, population engine) must reach the same answer through it. The
import-linter contract in pyproject.toml guards the package boundary; this test also covers
third-party and clock imports, which import-linter does not see.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "b12plan" / "core"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_core_imports_only_the_standard_library_and_itself() -> None:
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("b12plan.core") or top == "__future__":
                continue
            if top not in sys.stdlib_module_names or top == "b12plan":
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_core_never_reads_the_clock() -> None:
    for path in sorted(CORE.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for forbidden in ("date.today(", "datetime.now(", "time.time(", "datetime.utcnow("):
            assert forbidden not in text, f"{path.name} reads the clock via {forbidden}"
