"""What the exported resources say: codes, units, phases, who gave a dose, the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from b12plan.contract import CaseError, parse_case
from b12plan.core import evaluate
from b12plan.fhir import load_code_map, systems
from b12plan.knowledge import load_knowledge
from tests.fhir.support import bundle_of

K = load_knowledge()
CASES = Path(__file__).parent / "cases"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def _case(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CASES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _codes(concept: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


@pytest.fixture(scope="module")
def every_field() -> dict[str, Any]:
    return bundle_of(_case("every-field-gb"), knowledge=K)


def test_each_resource_is_a_valid_r4_resource_of_its_type(every_field: dict[str, Any]) -> None:
    for entry in every_field["entry"]:
        resource = entry["resource"]
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert model.model_dump(mode="json", exclude_none=True) == resource


def test_the_medication_request_uses_r4_fields_that_r5_dropped(every_field: dict[str, Any]) -> None:
    """R5 replaced medicationCodeableConcept with a CodeableReference: we must write R4."""
    (order,) = _resources(every_field, "MedicationRequest")
    assert "medicationCodeableConcept" in order and "medication" not in order


def test_every_record_names_the_one_patient(every_field: dict[str, Any]) -> None:
    (patient_entry,) = [
        e for e in every_field["entry"] if e["resource"]["resourceType"] == "Patient"
    ]
    for entry in every_field["entry"]:
        if entry["resource"]["resourceType"] != "Patient":
            assert entry["resource"]["subject"]["reference"] == patient_entry["fullUrl"]


def test_loinc_follows_the_unit_and_a_given_loinc_is_kept_as_chosen(
    every_field: dict[str, Any],
) -> None:
    labs = _resources(every_field, "Observation")
    by_unit = {
        (o["code"]["coding"][0]["code"], o["valueQuantity"]["unit"]): o["code"]
        for o in labs
        if "valueQuantity" in o
    }
    assert _codes(by_unit[("b12_total", "pmol/L")], LOINC) == ["14685-2"]
    mass = by_unit[("b12_total", "pg/mL")]
    assert mass["coding"][1] == {"system": LOINC, "code": "2132-9", "userSelected": True}
    assert _codes(by_unit[("folate", "nmol/L")], LOINC) == ["14732-2"], "2284-8 is mass/volume"
    assert _codes(by_unit[("haemoglobin", "g/dL")], LOINC) == ["718-7"]


def test_units_keep_their_spelling_and_carry_the_ucum_code(every_field: dict[str, Any]) -> None:
    quantities = [
        o["valueQuantity"] for o in _resources(every_field, "Observation") if "valueQuantity" in o
    ]
    micro = next(q for q in quantities if q["unit"] == "µmol/L")
    assert (micro["system"], micro["code"]) == (UCUM, "umol/L")
    doses = [a["dosage"]["dose"] for a in _resources(every_field, "MedicationAdministration")]
    assert {(d["unit"], d["code"]) for d in doses} == {
        ("mg", "mg"),
        ("µg", "ug"),
        ("mcg", "ug"),
        ("ug", "ug"),
    }


def test_a_reference_range_is_written_in_the_result_unit(every_field: dict[str, Any]) -> None:
    mma = next(
        o
        for o in _resources(every_field, "Observation")
        if o.get("valueQuantity", {}).get("unit") == "µmol/L"
    )
    (bounds,) = mma["referenceRange"]
    assert bounds["low"]["value"] == 0.05 and bounds["high"]["value"] == 0.46
    assert bounds["low"]["code"] == bounds["high"]["code"] == "umol/L"


def test_symptom_reports_are_coded_observations_with_a_status(
    every_field: dict[str, Any],
) -> None:
    sysm = systems()
    reports = [o for o in _resources(every_field, "Observation") if "valueCodeableConcept" in o]
    assert len(reports) == 3
    for report in reports:
        assert report["code"]["coding"][0]["system"] == sysm.symptom
        assert report["valueCodeableConcept"]["coding"][0]["system"] == sysm.symptom_status


def test_a_maintenance_order_is_sequence_2_with_no_invented_loading(
    every_field: dict[str, Any],
) -> None:
    (order,) = _resources(every_field, "MedicationRequest")
    (dosage,) = order["dosageInstruction"]
    assert dosage["sequence"] == 2
    assert dosage["timing"]["repeat"] == {
        "frequency": 1,
        "period": 56,
        "periodUnit": "d",
        "boundsPeriod": {"start": "2026-03-01", "end": "2027-03-01"},
    }
    assert order["status"] == "active"
    assert order["extension"] == [{"url": systems().brand, "valueString": "Cobalin-H"}]


def test_a_loading_order_adds_the_protocols_maintenance_as_sequence_2() -> None:
    case = _case("us-cyanocobalamin-loading")
    bundle = bundle_of(case, knowledge=K)
    (order,) = _resources(bundle, "MedicationRequest")
    loading, maintenance = order["dosageInstruction"]
    assert (loading["sequence"], maintenance["sequence"]) == (1, 2)
    assert loading["timing"]["repeat"]["period"] == 1
    assessment = evaluate(parse_case(case, K), K, as_of=parse_case(case, K).as_of)
    assert assessment.regimen is not None
    assert maintenance["timing"]["repeat"]["period"] == assessment.regimen.maintenance_interval_days
    assert maintenance["modifierExtension"] == [
        {"url": systems().protocol_derived, "valueString": assessment.regimen.protocol_id}
    ]
    assert "boundsPeriod" not in maintenance["timing"]["repeat"]


def test_medications_carry_atc_and_rxnorm_from_the_formulary(every_field: dict[str, Any]) -> None:
    (order,) = _resources(every_field, "MedicationRequest")
    concept = order["medicationCodeableConcept"]
    product = K.formulary.product("hydroxocobalamin")
    assert product is not None
    assert _codes(concept, ATC) == [product.atc]
    assert _codes(concept, RXNORM) == [product.rxnorm]
    assert concept["text"] == "hydroxocobalamin"


def test_the_cyanide_antidote_dose_is_not_coded_as_the_deficiency_product() -> None:
    bundle = bundle_of(_case("cyanide-antidote"), knowledge=K)
    for resource in _resources(bundle, "MedicationRequest") + _resources(
        bundle, "MedicationAdministration"
    ):
        concept = resource["medicationCodeableConcept"]
        assert _codes(concept, ATC) == ["V03AB33"]
        assert _codes(concept, RXNORM) == []


def test_routes_are_snomed_coded(every_field: dict[str, Any]) -> None:
    (admin, *_) = _resources(every_field, "MedicationAdministration")
    route_entry = load_code_map().route_entry("IM")
    assert route_entry is not None
    assert _codes(admin["dosage"]["route"], SNOMED) == [route_entry.code]


def test_who_gave_the_dose_is_the_performer(every_field: dict[str, Any]) -> None:
    actors = {
        a["effectiveDateTime"]: a.get("performer", [{}])[0].get("actor")
        for a in _resources(every_field, "MedicationAdministration")
    }
    assert actors["2026-01-05"] == {"type": "PractitionerRole", "display": "clinic"}
    assert actors["2026-01-07"] == {"type": "RelatedPerson", "display": "carer"}
    assert actors["2026-01-09"]["type"] == "Patient"
    assert actors["2026-01-11"] is None


def test_causes_carry_snomed_where_the_code_map_has_one(every_field: dict[str, Any]) -> None:
    codes = {
        c["code"]["coding"][0]["code"]: c["code"] for c in _resources(every_field, "Condition")
    }
    assert _codes(codes["pernicious_anaemia"], SNOMED) == ["84027009"]
    assert _codes(codes["pernicious_anaemia"], "http://hl7.org/fhir/sid/icd-10") == []
    assert _codes(codes["metformin"], SNOMED) == []


def test_the_care_plan_lists_the_assessed_schedule_and_monitoring() -> None:
    case = _case("us-cyanocobalamin-loading")
    parsed = parse_case(case, K)
    assessment = evaluate(parsed, K, as_of=parsed.as_of)
    (plan,) = _resources(bundle_of(case, knowledge=K), "CarePlan")
    doses = [a["detail"] for a in plan["activity"] if a["detail"]["kind"] == "MedicationRequest"]
    assert [d["scheduledTiming"]["event"][0] for d in doses] == [
        s.date.isoformat() for s in assessment.schedule
    ]
    checks = [a["detail"] for a in plan["activity"] if a["detail"]["kind"] == "ServiceRequest"]
    assert [c["code"]["text"] for c in checks] == [m.item for m in assessment.monitoring]
    assert assessment.next_dose is not None
    assert assessment.next_dose.due.isoformat() in plan["description"]


def test_nothing_recorded_is_a_bare_patient() -> None:
    bundle = bundle_of(_case("nothing-recorded"), knowledge=K)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Patient"]


def test_an_invalid_case_is_refused_with_the_field_path() -> None:
    case = _case("every-field-gb")
    case["observations"][0]["unit"] = "pmol"
    with pytest.raises(CaseError) as caught:
        bundle_of(case, knowledge=K)
    assert caught.value.errors[0]["loc"] == "observations[0].unit"


def test_text_fhir_cannot_carry_is_refused_by_field() -> None:
    case = _case("every-field-gb")
    case["administrations"][1]["site"] = "\u00a0"
    with pytest.raises(CaseError) as caught:
        bundle_of(case, knowledge=K)
    assert [e["loc"] for e in caught.value.errors] == ["administrations[1].site"]
