"""Scenario files (tests/scenarios/*.json): loading and checking, shared by every layer's tests.

A scenario is ``{"id", "rationale", "source", "case", "expect"}``. ``expect`` may hold:
``phase``, ``deficiency``, ``protocol_id`` (null = no regimen), ``loading``,
``maintenance_interval_days``, ``maintenance_interval``, ``regimen_lifelong``, ``next_dose``
(null allowed), ``schedule_first``, ``schedule_phases``, ``schedule_len_at_least``,
``monitoring_items``, ``codes_present``, ``codes_absent``; contract v1.1 adds ``dose_validity``
(``[valid, counts_as, reasons]`` per administration, in date order) and ``message_contains``
(``{code: text}``: the finding's message must contain the text).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).parent / "scenarios"


def load_scenarios() -> list[dict[str, Any]]:
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["id"] == path.stem, f"{path.name}: id must match the file name"
        out.append(data)
    return out


def mismatches(expect: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every way an assessment (contract JSON) differs from a scenario's expectations."""
    problems: list[str] = []

    def differ(what: str, want: Any, have: Any) -> None:
        if want != have:
            problems.append(f"{what}: expected {want!r}, got {have!r}")

    codes = {f["code"] for f in got["findings"]}
    for code in expect.get("codes_present", []):
        if code not in codes:
            problems.append(f"code {code} expected but absent (got {sorted(codes)})")
    for code in expect.get("codes_absent", []):
        if code in codes:
            problems.append(f"code {code} must not fire")
    for key in ("phase", "deficiency"):
        if key in expect:
            differ(key, expect[key], got[key])
    regimen = got["regimen"]
    if "protocol_id" in expect:
        differ("protocol_id", expect["protocol_id"], regimen and regimen["protocol_id"])
    for key, field in (
        ("loading", "loading"),
        ("maintenance_interval_days", "maintenance_interval_days"),
        ("maintenance_interval", "maintenance_interval"),
        ("regimen_lifelong", "lifelong"),
    ):
        if key in expect:
            differ(key, expect[key], regimen and regimen[field])
    if "next_dose" in expect:
        differ("next_dose", expect["next_dose"], got["next_dose"])
    schedule = got["schedule"]
    if "schedule_first" in expect:
        differ(
            "schedule_first", expect["schedule_first"], schedule[0]["date"] if schedule else None
        )
    if "schedule_phases" in expect:
        differ("schedule_phases", expect["schedule_phases"], [s["phase"] for s in schedule])
    if "schedule_len_at_least" in expect and len(schedule) < expect["schedule_len_at_least"]:
        problems.append(f"schedule has {len(schedule)} doses")
    if "monitoring_items" in expect:
        differ(
            "monitoring_items", expect["monitoring_items"], [m["item"] for m in got["monitoring"]]
        )
    if "dose_validity" in expect:
        differ(
            "dose_validity",
            expect["dose_validity"],
            [[d["valid"], d["counts_as"], d["reasons"]] for d in got["dose_validity"]],
        )
    messages = {f["code"]: f["message"] for f in got["findings"]}
    for code, text in expect.get("message_contains", {}).items():
        if text not in messages.get(code, ""):
            problems.append(f"{code} message lacks {text!r}: {messages.get(code)!r}")
    return problems
