"""A clinic's reviewed copy of the knowledge files, for the ``B12PLAN_KNOWLEDGE_DIR`` tests."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from b12plan.knowledge import FILES

CLINIC_VERSION = "2026.11.1-riverside.1"
"""The copy's version: every assessment made with it records this, so tests can see it used."""


def clinic_copy(directory: Path, *, version: str = CLINIC_VERSION) -> Path:
    """The shipped files copied into ``directory`` with their ``version`` set to ``version``."""
    directory.mkdir(parents=True, exist_ok=True)
    shipped = resources.files("b12plan.knowledge")
    for name in FILES:
        text = shipped.joinpath(f"{name}.toml").read_text(encoding="utf-8")
        text, count = re.subn(r'(?m)^version = "[^"]*"$', f'version = "{version}"', text)
        assert count == 1, name
        (directory / f"{name}.toml").write_text(text, encoding="utf-8")
    return directory
