"""The records service on a real store: writes, validation, access, versions, assessment."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from b12plan.service import KINDS, Conflict, Forbidden, InvalidInput, NotFound, Principal
from b12plan.service.records import _reported_by
from b12plan.service.schemas import (
    AdministrationIn,
    AdverseEventIn,
    CauseIn,
    DecisionIn,
    MedicationIn,
    ObservationIn,
    PatientIn,
    PrescriptionIn,
    PriorTreatmentIn,
    SymptomIn,
    WorklistQuery,
)
from b12plan.store.models import RECORD_MODELS, AuditEntry
from tests.store.support import TODAY, World, make_services

D = dt.date
LOW_B12 = ObservationIn(code="b12_total", date=D(2026, 3, 1), value=98, unit="pmol/L")
HYDROXO = dict(product="hydroxocobalamin", dose=1, unit="mg", route="IM")


def counts(world: World, patient_id: str) -> tuple[int, int]:
    """(rows in every clinical table, audit entries) for one patient."""
    with world.services.db.reading() as session:
        rows = sum(
            session.scalar(select(func.count()).select_from(m).where(m.patient_id == patient_id))
            or 0
            for m in RECORD_MODELS.values()
        )
        audits = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.patient_id == patient_id)
        )
    return rows, audits or 0


def codes(world: World, who: Principal, patient_id: str, as_of: dt.date = TODAY) -> set[str]:
    return set(world.services.records.assess_patient(who, patient_id, as_of=as_of).codes())


# --- writes and validation --------------------------------------------------------------------


def test_records_of_every_kind_are_stored_and_listed(world: World) -> None:
    records, who, pid = world.services.records, world.clinician, world.patient_id
    entries: list[Any] = [
        CauseIn(code="pernicious_anaemia"),
        SymptomIn(code="paraesthesia", date=D(2026, 3, 1), status="present", reporter="clinician"),
        LOW_B12,
        AdministrationIn(date=D(2026, 3, 2), lot="LOT-42", given_by="clinic", **HYDROXO),
        PrescriptionIn(phase="loading", interval_days=2, start=D(2026, 3, 2), **HYDROXO),
        MedicationIn(code="metformin", start=D(2020, 1, 1)),
        AdverseEventIn(code="injection_site_pain", date=D(2026, 3, 3), note="sore for a day"),
        DecisionIn(
            code="neuro_loading_complete",
            date=D(2026, 5, 1),
            by="Dr Demo",
            reason="No further improvement over three reviews.",
        ),
        PriorTreatmentIn(since=D(2024, 1, 1), loading_completed=True),
    ]
    for entry in entries:
        stored = records.add_record(who, pid, entry)
        assert (stored.version, stored.status, stored.data) == (1, "active", entry)
    for kind, entry in zip(KINDS.values(), entries, strict=True):
        (listed,) = records.list_records(who, pid, kind)
        assert listed.data == entry
    case = records.case_document(who, pid)
    assert case["causes"] == ["pernicious_anaemia"]
    assert case["prescription"]["interval_days"] == 2
    assert "lot" not in case["administrations"][0]  # kept in the store, not in the contract
    assert case["symptoms"][0]["reporter"] == "clinician"
    assert case["decisions"][0]["by"] == "Dr Demo"
    assert case["prior_treatment"] == {"since": "2024-01-01", "loading_completed": True}


@pytest.mark.parametrize(
    ("entry", "loc", "type_"),
    [
        (
            ObservationIn(code="b12_total", date=D(2026, 3, 1), value=98, unit="pmol"),
            "unit",
            "unknown_unit",
        ),
        (ObservationIn(date=D(2026, 3, 1), value=98, unit="pmol/L"), "code", "missing"),
        (
            SymptomIn(code="tiredness", date=D(2026, 3, 1), status="present"),
            "code",
            "unknown_symptoms",
        ),
        (SymptomIn(code="fatigue", date=D(2026, 7, 1), status="present"), "date", "date_in_future"),
        (SymptomIn(code="fatigue", date=D(1950, 1, 1), status="present"), "date", "before_birth"),
        (
            PrescriptionIn(
                phase="loading", interval_days=2, start=D(2026, 3, 2), end=D(2026, 3, 1), **HYDROXO
            ),
            "end",
            "end_before_start",
        ),
        (
            # The input refuses a negative dose itself; the service refuses one that got past it.
            AdministrationIn.model_construct(
                date=D(2026, 3, 2), product="hydroxocobalamin", dose=-1, unit="mg", route="IM"
            ),
            "dose",
            "greater_than",
        ),
        (CauseIn(code="bad_luck"), "code", "unknown_causes"),
    ],
    ids=[
        "unit",
        "no-code",
        "symptom-code",
        "future",
        "before-birth",
        "end-before-start",
        "negative-dose",
        "cause",
    ],
)
def test_a_record_the_contract_refuses_is_not_stored(
    world: World, entry: Any, loc: str, type_: str
) -> None:
    before = counts(world, world.patient_id)
    with pytest.raises(InvalidInput) as caught:
        world.services.records.add_record(world.clinician, world.patient_id, entry)
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [(loc, type_)]
    assert counts(world, world.patient_id) == before  # no row, no audit entry


@pytest.mark.parametrize(
    ("entry", "loc", "type_"),
    [
        (
            AdministrationIn(date=D(2026, 3, 2), **{**HYDROXO, "route": "IV push"}),
            "route",
            "unknown_routes",
        ),
        (
            PrescriptionIn(
                phase="loading", interval_days=2, start=D(2026, 3, 2), **{**HYDROXO, "unit": "ml"}
            ),
            "unit",
            "unknown_dose_units",
        ),
        (MedicationIn(code="aspirin", start=D(2026, 1, 1)), "code", "unknown_medications"),
        (AdverseEventIn(code="hiccups", date=D(2026, 3, 1)), "code", "unknown_adverse_events"),
        (
            SymptomIn(code="fatigue", date=D(2026, 3, 1), status="better"),
            "status",
            "unknown_statuses",
        ),
    ],
    ids=["route", "dose-unit", "medication", "adverse-event", "status"],
)
def test_vocabulary_a_request_body_cannot_check_is_checked_before_storing(
    world: World, entry: Any, loc: str, type_: str
) -> None:
    """Validated without a knowledge base (a REST body, a web form), an input is checked for
    shape only; the write runs the whole record through the contract before it commits."""
    before = counts(world, world.patient_id)
    with pytest.raises(InvalidInput) as caught:
        world.services.records.add_record(world.clinician, world.patient_id, entry)
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [(loc, type_)]
    assert counts(world, world.patient_id) == before


def test_an_unknown_jurisdiction_is_not_stored(world: World) -> None:
    moved = PatientIn(display_name="Test Patient A", jurisdiction="FR")
    with pytest.raises(InvalidInput) as caught:
        world.services.records.correct_patient(
            world.clinician, world.patient_id, moved, expected_version=1
        )
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [
        ("jurisdiction", "unknown_jurisdictions")
    ]


def test_an_imported_order_keeps_who_gives_it_and_where(world: World) -> None:
    """The contract's prescription has an administration's ``given_by`` and ``site``; the store
    keeps them (before, importing such a case failed)."""
    order = {
        **HYDROXO,
        "phase": "maintenance",
        "interval_days": 90,
        "start": "2026-01-05",
        "given_by": "self",
        "site": "thigh",
    }
    doc = {"schema_version": 1, "as_of": "2026-03-01", "prescription": order}
    pid = world.services.records.import_case(
        world.clinician, doc, patient_id=f"{world.patient_id}-rx"
    )
    case = world.services.records.case_document(world.clinician, pid, as_of=D(2026, 3, 1))
    assert case["prescription"] == order


def test_a_duplicate_cause_is_refused(world: World) -> None:
    records = world.services.records
    records.add_record(world.clinician, world.patient_id, CauseIn(code="gastrectomy"))
    with pytest.raises(InvalidInput) as caught:
        records.add_record(world.clinician, world.patient_id, CauseIn(code="gastrectomy"))
    assert caught.value.errors[0]["loc"] == "code"


def test_a_birth_date_after_existing_records_names_the_conflict(world: World) -> None:
    records, who, pid = world.services.records, world.clinician, world.patient_id
    stored = records.add_record(who, pid, LOW_B12)
    moved = PatientIn(display_name="Test Patient A", sex="female", birth_date=D(2026, 4, 1))
    with pytest.raises(InvalidInput) as caught:
        records.correct_patient(who, pid, moved, expected_version=1)
    (error,) = caught.value.errors
    assert error["loc"] == "birth_date"
    assert stored.id in error["msg"]
    future = PatientIn(display_name="X", birth_date=D(2027, 1, 1))
    with pytest.raises(InvalidInput) as caught:
        records.correct_patient(who, pid, future, expected_version=1)
    assert caught.value.errors[0]["loc"] == "birth_date"


# --- versions -------------------------------------------------------------------------------


def test_two_clinicians_editing_the_same_version_do_not_lose_an_update(world: World) -> None:
    records, pid = world.services.records, world.patient_id
    stored = records.add_record(world.clinician, pid, LOW_B12)
    mine = LOW_B12.model_copy(update={"value": 97.0})
    theirs = LOW_B12.model_copy(update={"value": 96.0})
    records.correct_record(world.clinician, pid, stored.id, mine, expected_version=1)
    before = counts(world, pid)
    with pytest.raises(Conflict) as caught:
        records.correct_record(world.colleague, pid, stored.id, theirs, expected_version=1)
    assert caught.value.current_version == 2
    assert counts(world, pid) == before
    current = records.get_record(world.colleague, pid, KINDS["observations"], stored.id)
    assert (current.version, current.data.value) == (2, 97.0)
    history = records.record_history(world.colleague, pid, KINDS["observations"], stored.id)
    assert [(h.version, h.status) for h in history] == [(1, "entered-in-error"), (2, "active")]
    assert history[0].superseded_by == history[1].version_id


def test_demographics_are_versioned_too(world: World) -> None:
    records, pid = world.services.records, world.patient_id
    fixed = PatientIn(display_name="Test Patient A.", sex="female", birth_date=D(1960, 1, 3))
    out = records.correct_patient(world.clinician, pid, fixed, expected_version=1)
    assert (out.version, out.birth_date) == (2, D(1960, 1, 3))
    with pytest.raises(Conflict):
        records.correct_patient(world.colleague, pid, fixed, expected_version=1)


def test_retracted_and_superseded_rows_are_listed_only_on_request(world: World) -> None:
    records, who, pid = world.services.records, world.clinician, world.patient_id
    kind = KINDS["observations"]
    a = records.add_record(who, pid, LOW_B12)
    b = records.add_record(who, pid, LOW_B12.model_copy(update={"date": D(2026, 3, 2)}))
    records.retract_record(who, pid, kind, a.id, expected_version=1, reason="wrong patient")
    records.correct_record(who, pid, b.id, LOW_B12, expected_version=1)
    assert [(r.id, r.version) for r in records.list_records(who, pid, kind)] == [(b.id, 2)]
    everything = records.list_records(who, pid, kind, include_entered_in_error=True)
    assert sorted((r.id, r.version, r.status) for r in everything) == sorted(
        [(a.id, 1, "entered-in-error"), (b.id, 1, "entered-in-error"), (b.id, 2, "active")]
    )
    trail = records.audit_trail(who, pid).items
    assert [e.action for e in trail[:3]] == ["correct", "retract", "create"]
    assert trail[1].detail == "wrong patient"


# --- the assessment ignores what was entered in error ------------------------------------------


def test_the_assessment_ignores_entered_in_error_rows(world: World) -> None:
    records, who, pid = world.services.records, world.clinician, world.patient_id
    records.add_record(who, pid, CauseIn(code="pernicious_anaemia"))
    records.add_record(who, pid, LOW_B12)
    typo = records.add_record(
        who,
        pid,
        AdministrationIn(
            date=D(2026, 3, 2), product="hydroxocobalamin", dose=1000, unit="mg", route="IM"
        ),
    )
    reaction = records.add_record(who, pid, AdverseEventIn(code="anaphylaxis", date=D(2026, 3, 2)))
    assert {"DOSE_UNIT_SUSPECT", "ALLERGIC_REACTION"} <= codes(world, who, pid)
    records.correct_record(
        who,
        pid,
        typo.id,
        AdministrationIn(
            date=D(2026, 3, 2), product="hydroxocobalamin", dose=1, unit="mg", route="IM"
        ),
        expected_version=1,
    )
    records.retract_record(who, pid, KINDS["adverse_events"], reaction.id, expected_version=1)
    assert not {"DOSE_UNIT_SUSPECT", "ALLERGIC_REACTION"} & codes(world, who, pid)


def test_the_prescription_in_force_is_the_latest_started_by_as_of(world: World) -> None:
    records, who, pid = world.services.records, world.clinician, world.patient_id
    records.add_record(
        who, pid, PrescriptionIn(phase="loading", interval_days=2, start=D(2026, 1, 5), **HYDROXO)
    )
    records.add_record(
        who,
        pid,
        PrescriptionIn(phase="maintenance", interval_days=56, start=D(2026, 7, 1), **HYDROXO),
    )
    assert records.case_document(who, pid)["prescription"]["phase"] == "loading"
    later = records.case_document(who, pid, as_of=D(2026, 8, 1))
    assert later["prescription"]["phase"] == "maintenance"


def test_as_of_defaults_to_the_clock_and_cannot_precede_birth(world: World) -> None:
    records = world.services.records
    assert records.assess_patient(world.clinician, world.patient_id).as_of == TODAY
    with pytest.raises(InvalidInput) as caught:
        records.assess_patient(world.clinician, world.patient_id, as_of=D(1950, 1, 1))
    assert caught.value.errors[0]["loc"] == "as_of"


# --- access ----------------------------------------------------------------------------------


def test_a_patient_sees_only_their_own_record(world: World) -> None:
    records, me = world.services.records, world.patient
    assert records.get_patient(me, world.patient_id).id == world.patient_id
    assert [p.id for p in records.list_patients(me).items] == [world.patient_id]
    for other in (world.neighbour_id, world.far_patient_id):
        with pytest.raises(NotFound):
            records.get_patient(me, other)
        with pytest.raises(NotFound):
            records.assess_patient(me, other)
        before = counts(world, other)
        with pytest.raises(NotFound):
            records.add_record(me, other, SymptomIn(code="fatigue", date=TODAY, status="present"))
        assert counts(world, other) == before


def test_a_patient_logs_symptoms_side_effects_and_self_injections(world: World) -> None:
    records, me, pid = world.services.records, world.patient, world.patient_id
    records.add_record(me, pid, SymptomIn(code="fatigue", date=TODAY, status="improving"))
    records.add_record(me, pid, AdverseEventIn(code="injection_site_pain", date=TODAY))
    dose = records.add_record(me, pid, AdministrationIn(date=TODAY, site="left thigh", **HYDROXO))
    assert dose.data.given_by == "self"  # a patient's own log: self-given unless they say carer
    assert dose.recorded_by == me.user_id
    with pytest.raises(Forbidden):
        records.add_record(me, pid, AdministrationIn(date=TODAY, given_by="clinic", **HYDROXO))


@pytest.mark.parametrize("kind", ["prescriptions", "observations", "causes", "medications"])
def test_a_patient_cannot_change_clinic_records(world: World, kind: str) -> None:
    records, pid = world.services.records, world.patient_id
    samples: dict[str, Any] = {
        "prescriptions": PrescriptionIn(
            phase="maintenance", interval_days=84, start=D(2026, 1, 1), **HYDROXO
        ),
        "observations": LOW_B12,
        "causes": CauseIn(code="dietary"),
        "medications": MedicationIn(code="ppi", start=D(2025, 1, 1)),
    }
    stored = records.add_record(world.clinician, pid, samples[kind])
    before = counts(world, pid)
    with pytest.raises(Forbidden):
        records.add_record(world.patient, pid, samples[kind])
    with pytest.raises(Forbidden):
        records.correct_record(world.patient, pid, stored.id, samples[kind], expected_version=1)
    with pytest.raises(Forbidden):
        records.retract_record(world.patient, pid, KINDS[kind], stored.id, expected_version=1)
    assert counts(world, pid) == before
    assert records.list_records(world.patient, pid, KINDS[kind])[0].version == 1  # may read


def test_a_patient_corrects_only_what_they_entered(world: World) -> None:
    records, pid = world.services.records, world.patient_id
    by_clinic = records.add_record(
        world.clinician, pid, SymptomIn(code="fatigue", date=TODAY, status="present")
    )
    mine = records.add_record(
        world.patient, pid, SymptomIn(code="numbness", date=TODAY, status="present")
    )
    better = SymptomIn(code="numbness", date=TODAY, status="improving")
    assert (
        records.correct_record(world.patient, pid, mine.id, better, expected_version=1).version == 2
    )
    with pytest.raises(Forbidden):
        records.correct_record(world.patient, pid, by_clinic.id, better, expected_version=1)


def test_clinicians_see_their_own_clinic_only(world: World) -> None:
    records = world.services.records
    ids = {p.id for p in records.list_patients(world.clinician, limit=200).items}
    assert {world.patient_id, world.neighbour_id} <= ids
    assert world.far_patient_id not in ids
    with pytest.raises(NotFound):
        records.assess_patient(world.outsider, world.patient_id)
    with pytest.raises(Forbidden):
        records.list_patients(world.outsider, clinic=world.clinic)
    with pytest.raises(Forbidden):
        records.worklist(world.patient, WorklistQuery())
    admin_view = records.get_patient(world.admin, world.far_patient_id)
    assert admin_view.clinic_id == world.other_clinic


def test_every_write_is_audited_with_who_and_when(world: World) -> None:
    records, pid = world.services.records, world.patient_id
    stored = records.add_record(
        world.patient, pid, SymptomIn(code="fatigue", date=TODAY, status="present")
    )
    entry = records.audit_trail(world.clinician, pid).items[0]
    assert (entry.actor, entry.actor_user_id) == (world.patient.label, world.patient.user_id)
    assert (entry.action, entry.entity_type, entry.entity_id) == ("create", "symptoms", stored.id)
    assert entry.after_version_id == stored.version_id
    assert entry.at == world.services.clock.now()


def test_a_cached_assessment_follows_writes_made_elsewhere(world: World) -> None:
    """Two server processes have two caches; each sees the other's writes at once."""
    here = world.services.records
    elsewhere = make_services(world.services.settings.database_url)
    try:
        assert "ALLERGIC_REACTION" not in codes(world, world.clinician, world.patient_id)
        elsewhere.records.add_record(
            world.colleague, world.patient_id, AdverseEventIn(code="anaphylaxis", date=TODAY)
        )
        assert "ALLERGIC_REACTION" in codes(world, world.clinician, world.patient_id)
        case = here.case_document(world.clinician, world.patient_id)
        assert [e["code"] for e in case["adverse_events"]] == ["anaphylaxis"]
    finally:
        elsewhere.db.dispose()


def test_several_records_are_saved_together_or_not_at_all(world: World) -> None:
    """A diary page holds several symptoms: one bad entry leaves none of them stored."""
    records, pid = world.services.records, world.patient_id
    before = counts(world, pid)
    good = SymptomIn(code="fatigue", date=D(2026, 5, 1), status="present")
    bad = SymptomIn(code="tiredness", date=D(2026, 5, 1), status="present")
    with pytest.raises(InvalidInput) as refused:
        records.add_records(world.patient, pid, [good, bad])
    assert [e["loc"] for e in refused.value.errors] == ["[1].code"]
    assert counts(world, pid) == before
    stored = records.add_records(
        world.patient, pid, [good, good.model_copy(update={"code": "pallor"})]
    )
    assert [(s.data.code, s.data.reporter) for s in stored] == [
        ("fatigue", "patient"),
        ("pallor", "patient"),
    ]
    assert counts(world, pid) == (before[0] + 2, before[1] + 2)


@pytest.mark.parametrize(
    ("role", "asked", "stored"),
    [
        ("clinician", None, "clinician"),
        ("clinician", "patient", "patient"),
        ("admin", "carer", "carer"),
        ("patient", "clinician", "patient"),
        ("patient", None, "patient"),
        ("patient", "carer", "carer"),
        ("carer", "clinician", "carer"),  # the carer role of the reminders branch
    ],
)
def test_who_reported_a_symptom_follows_who_writes_it(
    role: str, asked: str | None, stored: str
) -> None:
    who = Principal(user_id="u", username="someone", role=role)
    symptom = SymptomIn(code="fatigue", date=D(2026, 5, 1), status="resolved", reporter=asked)
    result = _reported_by(who, symptom)
    assert result is not None and result.reporter == stored
