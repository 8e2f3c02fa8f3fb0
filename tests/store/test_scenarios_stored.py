"""Every clinical scenario, stored and read back, assesses exactly as the case file does.

This is the store's round trip: contract case -> rows -> contract case. A field dropped, a unit
or date mangled, or a record left out would change some scenario's assessment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from b12plan.app import Services
from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.service import Principal
from tests.scenario_support import load_scenarios, mismatches
from tests.store.support import Staff, make_services, uid

SCENARIOS = load_scenarios()
LATER = dt.datetime(2028, 1, 1, 12, tzinfo=dt.UTC)  # after every scenario's last record


@pytest.fixture(scope="module")
def later(db_url: str) -> Iterator[Services]:
    """The same store, on a day after all scenario records (the store refuses future events)."""
    built = make_services(db_url, now=LATER)
    yield built
    built.db.dispose()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_a_stored_scenario_assesses_like_its_case_file(
    later: Services, staff: Staff, scenario: dict[str, Any]
) -> None:
    case_doc = scenario["case"]
    knowledge = later.knowledge
    original = parse_case(case_doc, knowledge)
    as_of = original.as_of
    pid = uid("scenario")
    later.records.import_case(
        Principal.system("tests"), case_doc, clinic_id=staff.clinic, patient_id=pid
    )

    stored_doc = later.records.case_document(staff.clinician, pid, as_of=as_of)
    stored = parse_case(stored_doc, knowledge)
    expected = dataclasses.replace(original, patient=dataclasses.replace(original.patient, id=pid))
    assert stored.known_on(as_of) == expected.known_on(as_of)

    got = later.records.assess_patient(staff.clinician, pid, as_of=as_of).to_dict()
    assert got == evaluate(original, knowledge, as_of=as_of).to_dict()
    assert mismatches(scenario["expect"], got) == []
