"""``b12plan schedule --ics``: a calendar that parses back, one event per dose and check-up,
and the same bytes on every run (so re-imports update events instead of duplicating them)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from icalendar import Calendar

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge

from .conftest import EXAMPLES, Run, assert_clean_failure

US = EXAMPLES / "04-us-cyanocobalamin-maintenance.json"


def test_ics_has_one_event_per_dose_and_monitoring_item(
    run_cli: Run, knowledge: Knowledge, tmp_path: Path
) -> None:
    case = parse_case(
        json.loads(EXAMPLES.joinpath("01-pa-neuro-loading.json").read_text()), knowledge
    )
    assessment = evaluate(case, knowledge, as_of=case.as_of)
    out = tmp_path / "plan.ics"
    result = run_cli("schedule", str(EXAMPLES / "01-pa-neuro-loading.json"), "--ics", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""

    calendar = Calendar.from_ical(out.read_bytes())
    events = list(calendar.walk("VEVENT"))
    assert len(events) == len(assessment.schedule) + len(assessment.monitoring)
    doses = [e for e in events if str(e["SUMMARY"]).startswith("B12 injection:")]
    assert [e.decoded("DTSTART") for e in doses] == [d.date for d in assessment.schedule]
    assert str(doses[0]["SUMMARY"]) == "B12 injection: hydroxocobalamin 1 mg IM (loading)"
    window = assessment.next_dose
    assert window is not None
    first = str(doses[0]["DESCRIPTION"])
    for day in (window.earliest, window.due, window.overdue_after):
        assert day.isoformat() in first
    follow_ups = [e for e in events if str(e["SUMMARY"]).startswith("B12 follow-up:")]
    assert sorted(e.decoded("DTSTART") for e in follow_ups) == sorted(
        m.due for m in assessment.monitoring
    )
    for event in events:
        start = event.decoded("DTSTART")
        assert type(start) is dt.date  # all-day
        assert event.decoded("DTEND") == start + dt.timedelta(days=1)
        assert event.decoded("DTSTAMP") == dt.datetime(2026, 1, 28, tzinfo=dt.UTC)
    assert len({str(e["UID"]) for e in events}) == len(events)


def test_ics_is_byte_identical_on_a_second_run(run_cli: Run, tmp_path: Path) -> None:
    first, second = tmp_path / "a.ics", tmp_path / "b.ics"
    assert run_cli("schedule", str(US), "--ics", str(first)).returncode == 0
    assert run_cli("schedule", str(US), "--ics", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    summary = "B12 injection: cyanocobalamin 1000 mcg IM (maintenance)"
    assert summary.encode() in first.read_bytes()


def test_ics_to_stdout_and_as_of(run_cli: Run) -> None:
    result = run_cli("schedule", str(US), "--ics", "-", "--as-of", "2025-12-20")
    assert result.returncode == 0, result.stderr
    calendar = Calendar.from_ical(result.stdout.encode())
    stamps = {e.decoded("DTSTAMP") for e in calendar.walk("VEVENT")}
    assert stamps == {dt.datetime(2025, 12, 20, tzinfo=dt.UTC)}


def test_schedule_of_an_invalid_case_exits_2(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "never.ics"
    result = run_cli("schedule", "-", "--ics", str(out), input='{"schema_version": 1}')
    assert_clean_failure(result, 2)
    assert result.stderr.startswith("as_of: required")
    assert not out.exists()
