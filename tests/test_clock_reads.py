"""Only the clock module reads the clock; every other module is handed a date or a ``Clock``.

A rule that reads the clock gives a different answer tomorrow for the same record, and a test
of it passes today only. So ``b12plan.service.clock`` is the one module that may ask the time;
the composition root (``b12plan.app``) picks a clock and hands it on. This walks the syntax tree
of every module under ``src/b12plan`` and resolves each name through its imports, so aliases
(``dt.datetime.now``), from-imports (``date.today``), bare references (``default_factory=
date.today``) and the database's clock (``func.now()``) are all caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import b12plan

SRC = Path(b12plan.__file__).parent
CLOCK_MODULE = "b12plan.service.clock"

READS_THE_CLOCK = frozenset(
    {
        # the wall clock, as a date or an instant
        "datetime.date.today",
        "datetime.datetime.now",
        "datetime.datetime.today",
        "datetime.datetime.utcnow",
        "time.time",
        "time.time_ns",
        "time.localtime",
        "time.gmtime",
        "time.ctime",
        "time.asctime",
        "time.strftime",
        "email.utils.formatdate",
        "email.utils.localtime",
        # the database server's clock
        "sqlalchemy.func.now",
        "sqlalchemy.func.current_date",
        "sqlalchemy.func.current_timestamp",
        "sqlalchemy.sql.func.now",
        "sqlalchemy.sql.expression.func.now",
        # elapsed-time clocks: never a date, but listed so each use is seen and justified below
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.process_time",
    }
)

ALLOWED = {
    ("b12plan.population.generate", "time.perf_counter"): (
        "times how long generating a synthetic cohort took, to print it to the operator; "
        "an elapsed number of seconds that never enters the data or any conclusion"
    ),
    ("b12plan.fhir.api", "time.perf_counter"): (
        "times a Bundle import to report its throughput (log line and X-Import-Throughput"
        " header, issue 13); an elapsed number of seconds that never enters the record"
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was imported as (absolute imports, any scope)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(attrs)])


def clock_reads(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` for every reference to a clock-reading function in ``source``."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            name = _dotted(node, aliases)
            if name in READS_THE_CLOCK:
                found.append((node.lineno, name))
    return sorted(found)


def _every_read() -> dict[str, list[tuple[int, str]]]:
    reads = {}
    for path in sorted(SRC.rglob("*.py")):
        found = clock_reads(path.read_text(encoding="utf-8"))
        if found:
            reads[_module_name(path)] = found
    return reads


@pytest.mark.parametrize(
    "source",
    [
        "import datetime as dt\ndt.datetime.now(dt.UTC)",
        "import datetime\ndatetime.date.today()",
        "from datetime import date\nfield(default_factory=date.today)",
        "from datetime import datetime as DT\nDT.utcnow()",
        "def f():\n    from time import time as now\n    return now()",
        "import time\nstarted = time.monotonic()",
        "import sqlalchemy as sa\nsa.Column(server_default=sa.func.now())",
        "from sqlalchemy import func\nfunc.current_date()",
    ],
)
def test_the_scanner_sees_each_way_of_reading_the_clock(source: str) -> None:
    assert clock_reads(source), source


@pytest.mark.parametrize(
    "source",
    [
        "def f(clock):\n    return clock.today()",
        "def f(self):\n    return self.clock.now()",
        "import datetime as dt\ndt.date(2026, 3, 1) + dt.timedelta(days=28)",
        "from datetime import date\ndate.fromisoformat('2026-03-01')",
        "def f(value):\n    return value.strftime('%a')",
    ],
)
def test_dates_handed_in_are_not_clock_reads(source: str) -> None:
    assert clock_reads(source) == [], source


def test_only_the_clock_module_reads_the_clock() -> None:
    reads = _every_read()
    assert reads.get(CLOCK_MODULE), "the scanner should see the clock module's own reads"
    unexplained = {
        f"{module}:{line} {name}"
        for module, found in reads.items()
        if module != CLOCK_MODULE
        for line, name in found
        if (module, name) not in ALLOWED
    }
    assert not unexplained, (
        "read the time through the injected Clock (b12plan.service.clock), or add a "
        f"justified entry to ALLOWED: {sorted(unexplained)}"
    )


def test_every_allowed_clock_read_is_still_there() -> None:
    reads = _every_read()
    seen = {(module, name) for module, found in reads.items() for _, name in found}
    assert set(ALLOWED) <= seen, f"remove stale entries: {sorted(set(ALLOWED) - seen)}"
