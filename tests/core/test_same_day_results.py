"""Two results of one analyte on one day: the worse one counts as the latest, whatever the order."""

from __future__ import annotations

from datetime import date

import pytest

from b12plan.core import evaluate
from b12plan.core.facts import latest, results
from b12plan.core.model import Case, Observation
from tests.core.strategies import K

DAY = date(2026, 1, 5)


@pytest.mark.parametrize(
    ("code", "given", "counts"),
    [
        # B12: the lower; 150 and 200 pmol/L, where the text of the value would sort 200 last
        ("b12_total", [(150, "pmol/L"), (200, "pmol/L")], 150),
        ("b12_total", [(98, "pmol/L"), (150, "pmol/L")], 98),
        # mixed units compare in the canonical unit: 250 ng/L is 184.5 pmol/L
        ("b12_total", [(250, "ng/L"), (150, "pmol/L")], 150),
        ("haemoglobin", [(12.5, "g/dL"), (100, "g/L")], 100),
        ("folate", [(2.5, "ug/L"), (9, "nmol/L")], 2.5),
        # markers: the higher
        ("mcv", [(95, "fL"), (105, "fL")], 105),
        ("mma", [(350, "nmol/L"), (0.3, "umol/L")], 0.35),
    ],
)
def test_the_worse_result_of_the_day_is_the_latest(
    code: str, given: list[tuple[float, str]], counts: float
) -> None:
    for order in (given, list(reversed(given))):
        case = Case(
            as_of=DAY,
            observations=tuple(Observation(DAY, code, v, u) for v, u in order),
        )
        last = latest(results(case, K), code)
        assert last is not None
        assert last.value == pytest.approx(counts)


def test_severe_anaemia_on_either_sample_of_the_day_raises_the_potassium_warning() -> None:
    case = Case(
        as_of=DAY,
        causes=("pernicious_anaemia",),
        observations=(
            Observation(DAY, "b12_total", 90, "pmol/L"),
            Observation(DAY, "haemoglobin", 95, "g/L"),
            Observation(DAY, "haemoglobin", 75, "g/L"),
        ),
    )
    found = {f.code: f for f in evaluate(case, K, as_of=DAY).findings}
    assert "HYPOKALAEMIA_RISK" in found
    assert dict(found["HYPOKALAEMIA_RISK"].evidence)["hb"] == 75
