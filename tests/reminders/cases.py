"""Clinic-like cases for the reminder tests (contract case JSON, parsed by ``b12plan.contract``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from b12plan.contract import parse_case
from b12plan.core import Assessment, evaluate
from b12plan.core.model import Case
from b12plan.knowledge import load_knowledge

K = load_knowledge()
LOADING_START = dt.date(2026, 1, 5)
LOADING_DAYS = (0, 2, 4, 7, 9, 11)  # three times a week for two weeks


def dose(day: dt.date, given_by: str = "clinic", route: str = "IM") -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "product": "hydroxocobalamin",
        "dose": 1,
        "unit": "mg",
        "route": route,
        "given_by": given_by,
    }


def pernicious_anaemia_case(
    as_of: dt.date,
    *,
    maintenance: tuple[dt.date, ...] = (),
    given_by: str = "clinic",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Pernicious anaemia, no nerve symptoms: loading in January 2026, then 3-monthly."""
    doses = [dose(LOADING_START + dt.timedelta(days=n), "clinic") for n in LOADING_DAYS]
    doses += [dose(d, given_by) for d in maintenance]
    case: dict[str, Any] = {
        "schema_version": 1,
        "as_of": as_of.isoformat(),
        "jurisdiction": "GB",
        "patient": {"id": "p-reminders", "sex": "female", "birth_date": "1958-04-02"},
        "causes": ["pernicious_anaemia"],
        "observations": [
            {"code": "b12_total", "date": "2025-12-20", "value": 98, "unit": "pmol/L"},
            {"code": "haemoglobin", "date": "2025-12-20", "value": 118, "unit": "g/L"},
            {"code": "haemoglobin", "date": "2026-02-20", "value": 131, "unit": "g/L"},
        ],
        "symptoms": [{"code": "fatigue", "date": "2025-12-20", "status": "present"}],
        "administrations": [d for d in doses if d["date"] <= as_of.isoformat()],
    }
    for key, value in (extra or {}).items():
        case[key] = value
    return case


def assess(document: dict[str, Any]) -> tuple[Case, Assessment]:
    case = parse_case(document, K)
    return case, evaluate(case, K, as_of=case.as_of)
