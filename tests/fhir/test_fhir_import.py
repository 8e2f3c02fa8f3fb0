"""Reading other systems' Bundles: what is taken, what is skipped, and errors with FHIR paths."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12plan.core.model import Case, Medication, Patient
from b12plan.fhir import (
    BundleError,
    draft_orders,
    drafts_to_check,
    http_status,
    import_bundle,
    operation_outcome,
)
from b12plan.knowledge import load_knowledge
from tests.fhir.support import read_back

AS_OF = date(2026, 3, 1)
K = load_knowledge()
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SUBJECT = {"reference": "Patient/ehr-7"}
RECORD = Case(as_of=AS_OF, patient=Patient(id="ehr-7", birth_date=date(1958, 4, 2)))
"""The patient's record a draft order is checked against (its jurisdiction and birth date)."""


def _lab(loinc: str, day: str, value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value, "unit": unit}
    if code is not None:
        quantity.update(system=UCUM, code=code)
    return {
        "resourceType": "Observation",
        "id": f"lab-{loinc}-{day}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": SUBJECT,
        "effectiveDateTime": f"{day}T09:30:00+00:00",
        "valueQuantity": quantity,
    }


def _injection(day: str, **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "317106"}],
            "text": "Hydroxocobalamin 1 mg/mL injection",
        },
        "subject": SUBJECT,
        "effectiveDateTime": day,
        "performer": [{"actor": {"reference": "Practitioner/nurse-1"}}],
        "dosage": {
            "route": {"coding": [{"system": SNOMED, "code": "78421000"}]},
            "dose": {"value": 1, "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }
    resource.update(changes)
    return resource


def _order(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "rx-1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "B03BA03"}]},
        "subject": SUBJECT,
        "authoredOn": "2026-01-05",
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "wk"}},
                "route": {"text": "Intramuscular route"},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "mg"}}],
            }
        ],
    }
    resource.update(changes)
    return resource


def ehr_bundle() -> dict[str, Any]:
    """A searchset-like record as an EHR would send it, with unrelated resources mixed in."""
    resources = [
        {"resourceType": "Patient", "id": "ehr-7", "gender": "female", "birthDate": "1958-04-02"},
        {
            "resourceType": "Condition",
            "subject": SUBJECT,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "D51.0"}]},
        },
        {
            "resourceType": "Condition",
            "subject": SUBJECT,
            "code": {"coding": [{"system": SNOMED, "code": "38341003"}], "text": "Hypertension"},
        },
        _lab("14685-2", "2025-12-20", 98, "pmol/L", "pmol/L"),
        _lab("2093-3", "2025-12-20", 5.2, "mmol/L", "mmol/L"),  # cholesterol: not ours
        _lab("718-7", "2025-12-20", 10.4, "g/dL"),
        _injection("2026-01-05"),
        _injection("2026-01-07", status="entered-in-error"),
        _injection("2026-01-08", performer=[{"actor": {"reference": "Patient/ehr-7"}}]),
        _order(),
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "A02BC01"}]},
            "subject": SUBJECT,
            "effectivePeriod": {"start": "2019-05-01"},
        },
        {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}},
    ]
    return copy.deepcopy(  # shared dicts (SUBJECT) must not leak edits between tests
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {
                    "fullUrl": f"https://ehr.example/fhir/{r['resourceType']}/{r.get('id', n)}",
                    "resource": r,
                }
                for n, r in enumerate(resources)
            ],
        }
    )


def _read(bundle: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return read_back(bundle, as_of=AS_OF, knowledge=K, **kwargs)


def _errors(bundle: object, **kwargs: Any) -> list[dict[str, str]]:
    with pytest.raises(BundleError) as caught:
        read_back(bundle, as_of=AS_OF, knowledge=K, **kwargs)
    return caught.value.errors


def test_an_ehr_record_reads_into_the_contract_case() -> None:
    case = _read(ehr_bundle(), patient_id="ehr-7")
    assert case["patient"] == {"id": "ehr-7", "sex": "female", "birth_date": "1958-04-02"}
    assert case["jurisdiction"] == "GB"
    assert case["causes"] == ["pernicious_anaemia"]
    assert case["observations"] == [
        {
            "code": "b12_total",
            "loinc": "14685-2",
            "date": "2025-12-20",
            "value": 98,
            "unit": "pmol/L",
        },
        {
            "code": "haemoglobin",
            "loinc": "718-7",
            "date": "2025-12-20",
            "value": 10.4,
            "unit": "g/dL",
        },
    ]
    assert case["administrations"] == [
        {
            "date": "2026-01-05",
            "product": "hydroxocobalamin",
            "dose": 1,
            "unit": "mg",
            "route": "IM",
            "given_by": "clinic",
        },
        {
            "date": "2026-01-08",
            "product": "hydroxocobalamin",
            "dose": 1,
            "unit": "mg",
            "route": "IM",
            "given_by": "self",
        },
    ]
    assert case["prescription"] == {
        "product": "hydroxocobalamin",
        "dose": 1,
        "unit": "mg",
        "route": "IM",
        "phase": "loading",
        "interval_days": 2,
        "start": "2026-01-05",
    }
    assert case["medications"] == [{"code": "ppi", "start": "2019-05-01"}]


@pytest.mark.parametrize(
    ("repeat", "jurisdiction", "expected"),
    [
        ({"frequency": 3, "period": 1, "periodUnit": "wk"}, "GB", (2, "loading")),
        ({"period": 3, "periodUnit": "mo"}, "GB", (84, "maintenance")),
        ({"period": 1, "periodUnit": "mo"}, "US", (30, "maintenance")),
        ({"frequency": 2, "period": 1, "periodUnit": "a"}, "GB", (182, "maintenance")),
        ({"period": 20, "periodUnit": "d"}, "GB", (20, "loading")),
        ({"period": 3, "periodUnit": "wk"}, "GB", (21, "maintenance")),
    ],
    ids=["3-a-week", "3-monthly-gb", "monthly-us", "twice-a-year", "20-days", "3-weeks"],
)
def test_order_timings_from_other_systems_become_days_and_a_phase(
    repeat: dict[str, Any], jurisdiction: str, expected: tuple[int, str]
) -> None:
    bundle = ehr_bundle()
    bundle["entry"][0]["resource"]["extension"] = [
        {
            "url": "https://b12plan.example/fhir/StructureDefinition/jurisdiction",
            "valueCode": jurisdiction,
        }
    ]
    order = next(e["resource"] for e in bundle["entry"] if e["resource"].get("id") == "rx-1")
    order["dosageInstruction"][0]["timing"]["repeat"] = repeat
    rx = _read(bundle)["prescription"]
    assert (rx["interval_days"], rx["phase"]) == expected


def _entry(bundle: dict[str, Any], kind: str, nth: int = 0) -> tuple[int, dict[str, Any]]:
    found = [
        (i, e["resource"])
        for i, e in enumerate(bundle["entry"])
        if e["resource"]["resourceType"] == kind
    ]
    return found[nth]


def test_an_unknown_unit_is_named_by_its_path() -> None:
    bundle = ehr_bundle()
    i, lab = _entry(bundle, "Observation")
    lab["valueQuantity"] = {"value": 98, "unit": "pmol"}
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.valueQuantity.unit"
    assert problem["msg"].startswith("unknown unit 'pmol' for b12_total (accepted: pmol/L")
    assert http_status([problem]) == 422


def test_a_dose_whose_unit_and_ucum_code_disagree_is_refused() -> None:
    bundle = ehr_bundle()
    i, admin = _entry(bundle, "MedicationAdministration")
    admin["dosage"]["dose"] = {"value": 1000, "unit": "mg", "system": UCUM, "code": "ug"}
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.dosage.dose.code"
    assert "disagree" in problem["msg"]


def test_the_ucum_code_is_read_when_the_display_unit_is_free_text() -> None:
    bundle = ehr_bundle()
    _, admin = _entry(bundle, "MedicationAdministration")
    admin["dosage"]["dose"] = {"value": 1000, "unit": "microgram", "system": UCUM, "code": "ug"}
    assert _read(bundle)["administrations"][0]["unit"] == "ug"


def test_a_record_of_another_patient_is_refused() -> None:
    bundle = ehr_bundle()
    i, lab = _entry(bundle, "Observation")
    lab["subject"] = {"reference": "Patient/ehr-8"}
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.subject.reference"
    assert problem["type"] == "conflict"


def test_a_second_patient_is_refused() -> None:
    bundle = ehr_bundle()
    bundle["entry"].append({"resource": {"resourceType": "Patient", "id": "ehr-8"}})
    problems = _errors(bundle)
    assert problems[0]["loc"] == f"entry[{len(bundle['entry']) - 1}].resource"
    assert "second Patient" in problems[0]["msg"]


def test_the_patient_must_be_the_one_asked_about() -> None:
    problems = _errors(ehr_bundle(), patient_id="ehr-9")
    assert problems[0] == {
        "loc": "entry[0].resource.id",
        "msg": "Patient 'ehr-7' is not the patient asked about ('ehr-9')",
        "type": "conflict",
    }


def test_a_record_without_a_subject_is_refused() -> None:
    bundle = ehr_bundle()
    i, lab = _entry(bundle, "Observation")
    del lab["subject"]
    (problem,) = _errors(bundle)
    assert (problem["loc"], problem["type"]) == (f"entry[{i}].resource.subject", "required")


def test_two_current_b12_orders_are_a_conflict() -> None:
    bundle = ehr_bundle()
    bundle["entry"].append({"resource": _order(id="rx-2")})
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{len(bundle['entry']) - 1}].resource.status"
    assert "second current B12 order" in problem["msg"]


def test_an_ended_order_is_kept_when_there_is_no_current_one() -> None:
    bundle = ehr_bundle()
    _, order = _entry(bundle, "MedicationRequest")
    order["status"] = "stopped"
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
        "start": "2026-01-05",
        "end": "2026-02-01",
    }
    assert _read(bundle)["prescription"]["end"] == "2026-02-01"
    del order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"]
    assert "prescription" not in _read(bundle), "a stop without a date is not guessed"


def test_contract_rules_point_back_into_the_bundle() -> None:
    bundle = ehr_bundle()
    _, order = _entry(bundle, "MedicationRequest")
    i = bundle["entry"].index(next(e for e in bundle["entry"] if e["resource"] is order))
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
        "start": "2026-01-05",
        "end": "2025-01-01",
    }
    (problem,) = _errors(bundle)
    assert problem == {
        "loc": f"entry[{i}].resource.dosageInstruction[0].timing.repeat.boundsPeriod.end",
        "msg": "end 2025-01-01 is before start 2026-01-05",
        "type": "business-rule",
    }


def test_a_result_before_the_birth_date_points_at_its_effective_date() -> None:
    bundle = ehr_bundle()
    i, lab = _entry(bundle, "Observation")
    lab["effectiveDateTime"] = "1950-01-01"
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.effectiveDateTime"


def test_an_unknown_b12plan_code_is_refused_by_the_contract() -> None:
    bundle = ehr_bundle()
    i, condition = _entry(bundle, "Condition")
    condition["code"] = {
        "coding": [{"system": "https://b12plan.example/fhir/CodeSystem/cause", "code": "gout"}]
    }
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.code"
    assert problem["type"] == "code-invalid"


def test_an_unknown_modifier_extension_stops_the_order_being_read() -> None:
    bundle = ehr_bundle()
    i, order = _entry(bundle, "MedicationRequest")
    order["dosageInstruction"][0]["modifierExtension"] = [
        {"url": "https://other.example/do-not-give", "valueBoolean": True}
    ]
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.dosageInstruction[0].modifierExtension"
    assert problem["type"] == "not-supported"


def test_more_than_one_dose_a_day_is_not_read_as_a_regimen() -> None:
    bundle = ehr_bundle()
    i, order = _entry(bundle, "MedicationRequest")
    order["dosageInstruction"][0]["timing"]["repeat"] = {
        "frequency": 2,
        "period": 1,
        "periodUnit": "d",
    }
    (problem,) = _errors(bundle)
    assert problem["loc"] == f"entry[{i}].resource.dosageInstruction[0].timing.repeat.period"


def test_a_medication_reference_to_a_contained_medication_is_followed() -> None:
    bundle = ehr_bundle()
    _, order = _entry(bundle, "MedicationRequest")
    del order["medicationCodeableConcept"]
    order["contained"] = [
        {
            "resourceType": "Medication",
            "id": "m1",
            "code": {"coding": [{"system": RXNORM, "code": "309594"}]},
        }
    ]
    order["medicationReference"] = {"reference": "#m1"}
    assert _read(bundle)["prescription"]["product"] == "cyanocobalamin"


@pytest.mark.parametrize(
    ("body", "loc", "fragment"),
    [
        ([], "", "expected a FHIR Bundle"),
        ({"resourceType": "Patient"}, "resourceType", "expected 'Bundle'"),
        ({"resourceType": "Bundle", "type": "history"}, "type", "carries no record"),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Nonsense"}}],
            },
            "entry[0].resource.resourceType",
            "unknown FHIR R4 resource type",
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Observation", "code": {"text": "x"}}}],
            },
            "entry[0].resource.status",
            "required",
        ),
    ],
    ids=["not-an-object", "not-a-bundle", "history", "unknown-type", "missing-status"],
)
def test_what_is_not_a_readable_bundle(body: object, loc: str, fragment: str) -> None:
    problems = _errors(body)
    assert problems[0]["loc"] == loc
    assert fragment in problems[0]["msg"]


def test_invalid_fhir_values_are_structure_errors_and_400() -> None:
    bundle = ehr_bundle()
    i, lab = _entry(bundle, "Observation")
    lab["valueQuantity"]["value"] = "ninety"
    problems = _errors(bundle)
    assert problems[0]["loc"] == f"entry[{i}].resource.valueQuantity.value"
    assert problems[0]["type"] == "structure"
    assert http_status(problems) == 400


def test_the_operation_outcome_names_each_fhir_path() -> None:
    bundle = ehr_bundle()
    i, lab = _entry(bundle, "Observation")
    lab["valueQuantity"] = {"value": 98, "unit": "pmol"}
    j, admin = _entry(bundle, "MedicationAdministration")
    del admin["dosage"]["route"]
    outcome = operation_outcome(_errors(bundle))
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["expression"] for issue in outcome["issue"]] == [
        [f"Bundle.entry[{i}].resource.valueQuantity.unit"],
        [f"Bundle.entry[{j}].resource.dosage.route"],
    ]
    assert outcome["issue"][0]["diagnostics"].startswith(
        f"entry[{i}].resource.valueQuantity.unit: unknown unit 'pmol'"
    )
    assert {issue["severity"] for issue in outcome["issue"]} == {"error"}


def test_entered_in_error_and_unrelated_records_change_nothing() -> None:
    bundle = ehr_bundle()
    before = _read(bundle)
    extra = copy.deepcopy(bundle)
    extra["entry"].append({"resource": _lab("2093-3", "2026-02-01", 6.0, "mmol/L", "mmol/L")})
    wrong = _lab("14685-2", "2026-02-01", 400, "pmol/L", "pmol/L")
    wrong["status"] = "entered-in-error"
    extra["entry"].append({"resource": wrong})
    assert _read(extra) == before


def test_draft_orders_read_b12_and_listed_medications_only() -> None:
    drafts = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": _order(status="draft", authoredOn=None)},
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "fa",
                    "status": "draft",
                    "intent": "order",
                    "subject": SUBJECT,
                    "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "B03BB01"}]},
                }
            },
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "amox",
                    "status": "draft",
                    "intent": "order",
                    "subject": SUBJECT,
                    "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "J01CA04"}]},
                }
            },
        ],
    }
    del drafts["entry"][0]["resource"]["authoredOn"]
    assert drafts_to_check(drafts, as_of=AS_OF, patient_id="ehr-7", knowledge=K)
    found = draft_orders(drafts, as_of=AS_OF, record=RECORD, patient_id="ehr-7", knowledge=K)
    assert [d.entry for d in found] == [0, 1]
    assert found[0].prescription is not None and found[0].prescription.start == AS_OF
    assert found[1].medication == Medication(start=AS_OF, code="folic_acid")


def test_only_unrelated_draft_orders_need_no_check() -> None:
    amoxicillin = {**_order(status="draft"), "medicationCodeableConcept": {"text": "amoxicillin"}}
    drafts = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": amoxicillin}]}
    assert not drafts_to_check(drafts, as_of=AS_OF, patient_id="ehr-7", knowledge=K)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda d: d["doseAndRate"][0]["doseQuantity"].update(value=-1),
            "dosageInstruction[0].doseAndRate[0].doseQuantity.value",
        ),
        (
            lambda d: d["timing"]["repeat"].update(boundsPeriod={"start": "1950-01-01"}),
            "dosageInstruction[0].timing.repeat.boundsPeriod.start",
        ),
    ],
    ids=["negative-dose", "before-birth"],
)
def test_a_draft_the_contract_refuses_is_an_error_at_its_fhir_path(change: Any, path: str) -> None:
    """A draft is held to the contract as a stored order is, against the patient's own record
    (here: born 1958-04-02), and the error names the draft's field, not the contract's."""
    order = _order(status="draft")
    change(order["dosageInstruction"][0])
    drafts = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    with pytest.raises(BundleError) as caught:
        draft_orders(drafts, as_of=AS_OF, record=RECORD, patient_id="ehr-7", knowledge=K)
    assert [e["loc"] for e in caught.value.errors] == [f"entry[0].resource.{path}"]


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.sampled_from(
        [
            "2026-01-01",
            "2026",
            "2026-01-01T10:00:00Z",
            "mo",
            "h",
            "wk",
            "Patient/x",
            "#m1",
            "urn:uuid:x",
            "http://loinc.org",
            "mg",
            "ug",
            "µg",
            "draft",
            "entered-in-error",
        ]
    ),
    st.just({}),
    st.just([]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    items: Any = (
        value.items()
        if isinstance(value, dict)
        else (enumerate(value) if isinstance(value, list) else [])
    )
    out: list[tuple[Any, ...]] = []
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@st.composite
def _mutated_bundles(draw: st.DrawFn) -> dict[str, Any]:
    """An EHR record with a few random edits: dropped elements, wrong types, odd codes."""
    doc = ehr_bundle()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_VALUES)
    return doc


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_bundles())
def test_whatever_arrives_the_answer_is_a_case_or_a_bundle_error(bundle: dict[str, Any]) -> None:
    try:
        case = read_back(bundle, as_of=AS_OF, knowledge=K)
    except BundleError as exc:
        assert exc.errors and all(set(e) == {"loc", "msg", "type"} for e in exc.errors)
    else:
        assert case["schema_version"] == 1


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_bundles())
def test_whatever_arrives_a_partial_import_is_a_case_with_located_warnings_or_an_error(
    bundle: dict[str, Any],
) -> None:
    """Partial import never crashes, and every warning has the outcome shape and a location."""
    try:
        imported = import_bundle(bundle, as_of=AS_OF, knowledge=K)
    except BundleError as exc:
        assert exc.errors and all(set(e) == {"loc", "msg", "type"} for e in exc.errors)
    else:
        assert imported.case.schema_version == 1
        for w in imported.warnings:
            assert set(w) == {"loc", "msg", "type", "severity"}
            assert w["loc"].startswith("entry[") or w["severity"] == "information"
        assert operation_outcome(imported.warnings)["resourceType"] == "OperationOutcome"
