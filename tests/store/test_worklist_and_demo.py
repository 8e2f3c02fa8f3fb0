"""The worklist and the demo data, on a real store."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from b12plan.app import Services
from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.examples import example_cases
from b12plan.knowledge import load_knowledge
from b12plan.service import Forbidden, NotFound, Principal
from b12plan.service.demo import seed_demo, shift_dates
from b12plan.service.schemas import WorklistQuery
from tests.store.support import TODAY, Staff, uid


def example_codes() -> dict[str, tuple[str, frozenset[str]]]:
    """Each shipped example's phase and finding codes, evaluated on its own date."""
    out = {}
    for example in example_cases():
        document = json.loads(example.text)
        case = parse_case(document, _knowledge())
        assessment = evaluate(case, _knowledge(), as_of=case.as_of)
        out[example.name] = (assessment.phase, assessment.codes())
    return out


def _knowledge() -> Knowledge:
    return load_knowledge()


@pytest.fixture(scope="module")
def clinic_of_examples(services: Services, staff: Staff) -> tuple[str, dict[str, str]]:
    """A new clinic holding every example case, moved so that it is 'as of' today."""
    from b12plan.service.schemas import NewClinic

    system = Principal.system("tests")
    clinic = uid("wl")
    services.auth.add_clinic(system, NewClinic(id=clinic, name="Worklist clinic"))
    ids = {}
    for example in example_cases():
        document = json.loads(example.text)
        days = (TODAY - dt.date.fromisoformat(document["as_of"])).days
        pid = uid("ex")
        services.records.import_case(
            system,
            shift_dates(document, days),
            clinic_id=clinic,
            patient_id=pid,
            display_name=example.name,
        )
        ids[example.name] = pid
    return clinic, ids


def test_the_worklist_holds_patients_with_warnings_most_urgent_first(
    services: Services, staff: Staff, clinic_of_examples: tuple[str, dict[str, str]]
) -> None:
    clinic, ids = clinic_of_examples
    page = services.records.worklist(staff.admin, WorklistQuery(clinic=clinic, limit=200))
    listed = {row.patient_id: row for row in page.items}
    knowledge = _knowledge()
    for example in example_cases():
        document = json.loads(example.text)
        moved = shift_dates(document, (TODAY - dt.date.fromisoformat(document["as_of"])).days)
        direct = evaluate(parse_case(moved, knowledge), knowledge, as_of=TODAY)
        wanted = any(f.severity in ("critical", "warning") for f in direct.findings) or any(
            m.due <= TODAY for m in direct.monitoring
        )
        pid = ids[example.name]
        assert (pid in listed) == wanted, example.name
        if wanted:
            assert listed[pid].phase == direct.phase
            assert [f.code for f in listed[pid].findings] == [f.code for f in direct.findings]
    assert listed, "the examples include patients needing attention"
    ranks = [{"critical": 0, "warning": 1}.get(r.worst_severity or "", 2) for r in page.items]
    assert ranks == sorted(ranks)
    assert page.total == len(page.items)


def test_the_worklist_filters_by_code_and_pages(
    services: Services, staff: Staff, clinic_of_examples: tuple[str, dict[str, str]]
) -> None:
    clinic, ids = clinic_of_examples
    expected = example_codes()
    overdue = services.records.worklist(
        staff.admin, WorklistQuery(clinic=clinic, codes=("INJECTION_OVERDUE",), limit=200)
    )
    want = {ids[n] for n, (_, codes) in expected.items() if "INJECTION_OVERDUE" in codes}
    assert want and {r.patient_id for r in overdue.items} == want
    assert all(r.days_overdue and r.days_overdue > 0 for r in overdue.items)
    everyone = services.records.worklist(
        staff.admin, WorklistQuery(clinic=clinic, sort="name", limit=200)
    )
    first = services.records.worklist(
        staff.admin, WorklistQuery(clinic=clinic, sort="name", limit=1, offset=1)
    )
    assert first.total == everyone.total
    assert [r.patient_id for r in first.items] == [everyone.items[1].patient_id]


def test_a_clinician_gets_only_their_own_clinics_worklist(
    services: Services, staff: Staff, clinic_of_examples: tuple[str, dict[str, str]]
) -> None:
    clinic, ids = clinic_of_examples
    with pytest.raises(Forbidden):
        services.records.worklist(staff.clinician, WorklistQuery(clinic=clinic))
    own = services.records.worklist(staff.clinician, WorklistQuery(limit=200))
    assert not set(ids.values()) & {r.patient_id for r in own.items}


def test_demo_patients_tell_the_example_stories_today(services: Services) -> None:
    seed = seed_demo(services.records, services.auth, today=TODAY)
    again = seed_demo(services.records, services.auth, today=TODAY)
    assert not any(p.created for p in again.patients)
    assert not any(u.created for u in again.users)
    system = Principal.system("tests")
    expected = example_codes()
    for example, patient in zip(example_cases(), seed.patients, strict=True):
        assessment = services.records.assess_patient(system, patient.id)
        assert (assessment.phase, assessment.codes()) == expected[example.name], example.name
    clinician = services.auth.login("dr.demo", "demo-clinician")
    who = services.auth.current_user(clinician.access_token)
    assert who is not None
    riverside = [p.id for p in seed.patients if p.clinic_id != "demo-clinic"]
    assert riverside
    with pytest.raises(NotFound):
        services.records.get_patient(who, riverside[0])
    patient_user = services.auth.login("pat.demo", "demo-patient").user
    assert patient_user.patient_id == seed.patients[0].id
