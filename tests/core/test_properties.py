"""Invariants that must hold for every case, not just the scenarios."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12plan.core import evaluate
from b12plan.core.model import Administration, Case, Observation, SymptomReport
from tests.core.strategies import K, case

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(case())
def test_same_case_same_assessment_byte_for_byte(c: Case) -> None:
    assert evaluate(c, K, as_of=c.as_of).to_dict() == evaluate(c, K, as_of=c.as_of).to_dict()


@SETTINGS
@given(case(), st.randoms(use_true_random=False))
def test_order_of_list_entries_carries_no_meaning(c: Case, rnd: random.Random) -> None:
    def shuffled(items: tuple[object, ...]) -> tuple[object, ...]:
        out = list(items)
        rnd.shuffle(out)
        return tuple(out)

    mixed = dataclasses.replace(
        c,
        symptoms=shuffled(c.symptoms),
        observations=shuffled(c.observations),
        administrations=shuffled(c.administrations),
        causes=tuple(reversed(c.causes)),
    )
    assert evaluate(mixed, K, as_of=c.as_of).to_dict() == evaluate(c, K, as_of=c.as_of).to_dict()


@SETTINGS
@given(case())
def test_no_regimen_or_schedule_without_a_cited_protocol(c: Case) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    if a.regimen is None:
        assert a.schedule == () and a.next_dose is None
        return
    protocol = K.protocol(a.regimen.protocol_id)
    assert a.regimen.source == protocol.source and protocol.source
    known = c.known_on(c.as_of)
    treated_elsewhere = known.prior_treatment is not None
    assert (a.deficiency in ("confirmed", "possible")) or a.cause_chronic or treated_elsewhere


@SETTINGS
@given(case())
def test_scheduled_doses_are_the_protocol_dose_within_the_formulary_range(c: Case) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    if a.regimen is None:
        return
    protocol = K.protocol(a.regimen.protocol_id)
    product = K.formulary.product(protocol.product)
    assert product is not None
    plausible = product.route_range(a.regimen.route)
    assert plausible is not None
    for dose in a.schedule:
        mcg = K.formulary.to_mcg(dose.dose, dose.unit)
        assert plausible.min_mcg <= mcg <= plausible.max_mcg


@SETTINGS
@given(case())
def test_schedule_respects_protocol_spacing_and_length(c: Case) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    if a.regimen is None or a.next_dose is None:
        return
    protocol = K.protocol(a.regimen.protocol_id)
    shortest = min(
        [s.window.min_interval_days for s in protocol.loading]
        + [protocol.maintenance.window.min_interval_days]
    )
    assert len(a.schedule) >= K.timing("schedule_min_doses")
    assert a.schedule[0].date >= a.as_of
    for earlier, later in zip(a.schedule, a.schedule[1:], strict=False):
        assert (later.date - earlier.date).days >= shortest
    limit = protocol.maintenance.interval_range_days[1]
    for dose in a.schedule:
        assert dose.phase in ("loading", "maintenance")
    assert a.regimen.maintenance_interval_days <= limit
    assert a.next_dose.earliest <= a.next_dose.due <= a.next_dose.overdue_after


@SETTINGS
@given(case(), st.integers(1, 400))
def test_records_dated_after_as_of_change_nothing(c: Case, later: int) -> None:
    when = c.as_of + timedelta(days=later)
    future = dataclasses.replace(
        c,
        administrations=(
            *c.administrations,
            Administration(when, "hydroxocobalamin", 1, "mg", "IM"),
        ),
        observations=(*c.observations, Observation(when, "b12_total", 50, "pmol/L")),
        symptoms=(*c.symptoms, SymptomReport(when, "numbness", "worsening")),
    )
    assert evaluate(future, K, as_of=c.as_of).to_dict() == evaluate(c, K, as_of=c.as_of).to_dict()


@SETTINGS
@given(case())
def test_missing_data_never_yields_a_schedule(c: Case) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    known = c.known_on(c.as_of)
    if a.deficiency == "unknown" and not a.cause_chronic and known.prior_treatment is None:
        assert a.regimen is None and a.schedule == ()
        assert "INSUFFICIENT_DATA" in a.codes() or a.codes() == {"PATIENT_DECEASED"}


@SETTINGS
@given(case())
def test_findings_use_known_codes_in_contract_order_with_evidence_and_source(c: Case) -> None:
    a = evaluate(c, K, as_of=c.as_of)
    known = {f.code: f.severity for f in K.findings}
    for f in a.findings:
        assert known[f.code] == f.severity
        assert f.message and f.source
    keys = [f.sort_key() for f in a.findings]
    assert keys == sorted(keys)
    assert len({f.code for f in a.findings}) == len(a.findings)


# --- contract v1.1 safety invariants -------------------------------------------------------------


@SETTINGS
@given(case())
def test_a_patient_or_carer_reported_status_never_ends_neurological_loading(c: Case) -> None:
    by_patients = dataclasses.replace(
        c,
        symptoms=tuple(dataclasses.replace(s, reporter="patient") for s in c.symptoms),
        decisions=(),
        prior_treatment=None,
    )
    a = evaluate(by_patients, K, as_of=c.as_of)
    if a.regimen is None:
        return
    if K.protocol(a.regimen.protocol_id).loading_end == "symptoms_stop_improving":
        assert not a.regimen.loading.complete


@SETTINGS
@given(case())
def test_no_next_dose_while_an_allergic_reaction_is_uncleared(c: Case) -> None:
    known = c.known_on(c.as_of)
    uncleared = [
        e
        for e in known.adverse_events
        if K.adverse_event(e.code).kind == "allergic"
        and not any(d.code == "rechallenge_cleared" and e.date <= d.date for d in known.decisions)
    ]
    a = evaluate(c, K, as_of=c.as_of)
    if uncleared:
        assert a.next_dose is None and a.schedule == ()
        assert "INJECTION_OVERDUE" not in a.codes()


@SETTINGS
@given(case())
def test_an_oral_order_never_yields_an_injection_plan(c: Case) -> None:
    known = c.known_on(c.as_of)
    a = evaluate(c, K, as_of=c.as_of)
    if known.prescription is not None and known.prescription.route == "oral":
        assert a.next_dose is None and a.schedule == ()
        assert a.regimen is None or a.regimen.route == "oral"


IMPLAUSIBLE = [
    ("haemoglobin", 13.6, "g/L"),
    ("folate", 300.0, "ug/L"),
    ("b12_total", 5.0, "pmol/L"),
    ("mcv", 12.0, "fL"),
    ("potassium", 45.0, "mmol/L"),
]


@SETTINGS
@given(case(), st.sampled_from(IMPLAUSIBLE), st.integers(0, 400))
def test_a_result_flagged_implausible_never_changes_the_plan(
    c: Case, bad: tuple[str, float, str], days_before: int
) -> None:
    code, value, unit = bad
    flagged = dataclasses.replace(
        c,
        observations=(
            *c.observations,
            Observation(c.as_of - timedelta(days=days_before), code, value, unit),
        ),
    )
    before = evaluate(c, K, as_of=c.as_of).to_dict()
    after = evaluate(flagged, K, as_of=c.as_of).to_dict()
    if after["findings"] == [f for f in after["findings"] if f["code"] == "PATIENT_DECEASED"]:
        assert after == before
        return
    assert "RESULT_IMPLAUSIBLE" in {f["code"] for f in after["findings"]}
    for outcome in (before, after):
        outcome["findings"] = [f for f in outcome["findings"] if f["code"] != "RESULT_IMPLAUSIBLE"]
    assert after == before
