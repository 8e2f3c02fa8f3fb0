"""The stylesheet's text colours meet WCAG 2.1 AA contrast (4.5:1) on their backgrounds."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from b12plan.web.chart import MARKER_COLOURS

CSS = resources.files("b12plan.web").joinpath("static/app.css").read_text(encoding="utf-8")
COLOURS = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", CSS))

# (text, background) pairs the pages use for text
PAIRS = [
    ("ink", "paper"),
    ("ink", "wash"),
    ("muted", "paper"),
    ("muted", "wash"),
    ("link", "paper"),
    ("link", "wash"),
    ("brand-ink", "brand"),
    ("brand", "paper"),
    ("critical", "paper"),
    ("critical", "critical-wash"),
    ("warning", "warning-wash"),
    ("info", "info-wash"),
    ("ok", "ok-wash"),
    ("ink", "focus"),
]


def luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize(("text", "background"), PAIRS, ids=[f"{t}-on-{b}" for t, b in PAIRS])
def test_text_contrast_meets_aa(text: str, background: str) -> None:
    ratio = contrast(COLOURS[text], COLOURS[background])
    assert ratio >= 4.5, f"--{text} on --{background}: {ratio:.2f}:1"


def test_the_contrast_formula_matches_wcag() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_chart_markers_stand_out_from_the_background() -> None:
    # WCAG 1.4.11: graphical objects need 3:1 against what is next to them
    for colour in MARKER_COLOURS:
        assert contrast(colour, "#ffffff") >= 3.0, colour
