"""Example cases shipped for ``b12plan demo``: contract v1.1 JSON, one patient story per file.

Each file is a plain case document (no extra keys: the contract forbids them), so it also serves
as a template for writing cases by hand. The titles below say what each story shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

TITLES = {
    "01-pa-neuro-loading.json": "Pernicious anaemia, neurological symptoms: alternate-day loading",
    "02-monthly-from-the-start.json": "Monthly from the start: maintenance without loading",
    "03-overdue-maintenance.json": "Maintenance every 3 months, next injection overdue",
    "04-us-cyanocobalamin-maintenance.json": "US cyanocobalamin 1000 mcg monthly after gastrectomy",
    "05-no-pretreatment-test.json": "Injections started without a pre-treatment B12 test",
    "06-stopped-lifelong.json": "Irreversible cause, prescription ended: lifelong therapy stopped",
    "07-allergic-hold.json": "Anaphylaxis after the second dose: injections on hold (v1.1)",
}


@dataclass(frozen=True)
class Example:
    name: str
    title: str
    text: str


def example_cases() -> list[Example]:
    """Every ``*.json`` beside this module, in file-name order."""
    root = resources.files(__package__)
    files = sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(".json")), key=lambda e: e.name
    )
    return [
        Example(name=f.name, title=TITLES.get(f.name, f.name), text=f.read_text(encoding="utf-8"))
        for f in files
    ]
