"""Contract v1.1 over FHIR (ADR 0057, 0065): who reported a symptom, decisions, prior treatment,
breastfeeding, as b12plan writes them and as an EHR sends them."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from b12plan.contract import case_to_dict
from b12plan.core import evaluate
from b12plan.fhir import BundleError, import_bundle
from b12plan.knowledge import load_knowledge
from tests.fhir.support import bundle_of

K = load_knowledge()
SCENARIOS = Path(__file__).parent.parent / "scenarios"
BASE = "https://b12plan.example/fhir"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _scenario(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((SCENARIOS / f"{name}.json").read_text("utf-8"))["case"]
    return case


def _as_of(case: dict[str, Any]) -> date:
    return date.fromisoformat(case["as_of"])


def _ehr_style(case: dict[str, Any]) -> dict[str, Any]:
    """b12plan's export as an EHR would hold it: the Patient has a server id, references use
    it, and no performer says ``type``."""
    bundle = bundle_of(case, knowledge=K, include_plan=False)
    patient = bundle["entry"][0]
    patient["resource"]["id"] = "ehr-77"
    old = patient.pop("fullUrl")
    for e in bundle["entry"][1:]:
        r = e["resource"]
        if r.get("subject", {}).get("reference") == old:
            r["subject"] = {"reference": "Patient/ehr-77"}
    return bundle


def _symptoms(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if any(c["system"] == f"{BASE}/CodeSystem/symptom" for c in _codings(e["resource"]))
    ]


def _codings(r: dict[str, Any]) -> list[dict[str, Any]]:
    codings: list[dict[str, Any]] = r.get("code", {}).get("coding", [])
    return codings


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _import(bundle: dict[str, Any], as_of: date, partial: bool = True) -> Any:
    return import_bundle(bundle, as_of=as_of, knowledge=K, partial=partial)


# --- who reported a symptom -------------------------------------------------------------------


def test_the_export_writes_who_reported_each_symptom() -> None:
    case = _scenario("neuro-decision-ends-loading")
    bundle = bundle_of(case, knowledge=K)
    performers = [s["performer"] for s in _symptoms(bundle)]
    patient_url = bundle["entry"][0]["fullUrl"]
    assert performers == [
        [{"type": "PractitionerRole", "display": "clinician"}],
        [{"type": "PractitionerRole", "display": "clinician"}],
        [{"reference": patient_url, "type": "Patient", "display": "patient"}],
    ]


@pytest.mark.parametrize(
    ("performer", "reporter"),
    [
        ([{"reference": "Patient/ehr-77"}], "patient"),
        ([{"reference": "https://ehr.example/fhir/Patient/ehr-77/_history/3"}], "patient"),
        ([{"type": "Patient", "display": "Mrs Patient"}], "patient"),
        ([{"reference": "RelatedPerson/daughter-1"}], "carer"),
        ([{"type": "RelatedPerson", "display": "daughter"}], "carer"),
        ([{"reference": "Practitioner/dr-1"}], "clinician"),
        ([{"reference": "PractitionerRole/gp-1"}], "clinician"),
        ([{"reference": "Organization/clinic"}], "clinician"),
        ([{"reference": "CareTeam/neuro"}], "clinician"),
        ([{"reference": "Practitioner/dr-1"}, {"reference": "Patient/ehr-77"}], "patient"),
        ([{"reference": "Practitioner/dr-1"}, {"type": "RelatedPerson"}], "carer"),
        (None, "clinician"),
    ],
    ids=[
        "patient-ref",
        "patient-absolute-ref",
        "patient-type",
        "related-person-ref",
        "related-person-type",
        "practitioner",
        "practitioner-role",
        "organization",
        "care-team",
        "practitioner-and-patient",
        "practitioner-and-carer",
        "none",
    ],
)
def test_the_performer_says_who_reported_the_symptom(
    performer: list[dict[str, Any]] | None, reporter: str
) -> None:
    case = _scenario("neuro-patient-diary-resolved-loading-continues")
    bundle = _ehr_style(case)
    resolved = _symptoms(bundle)[-1]
    if performer is None:
        del resolved["performer"]
    else:
        resolved["performer"] = performer
    imported = _import(bundle, _as_of(case))
    assert imported.case.symptoms[-1].reporter == reporter
    assert imported.warnings == []


def test_a_carer_s_report_from_an_ehr_imports_as_carer() -> None:
    case = _scenario("neuro-patient-diary-resolved-loading-continues")
    bundle = _ehr_style(case)
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:5f7c2a52-8b0c-4a8e-9d51-3f0a1c2b9e10",
            "resource": {
                "resourceType": "RelatedPerson",
                "patient": {"reference": "Patient/ehr-77"},
            },
        }
    )
    _symptoms(bundle)[-1]["performer"] = [
        {"reference": "urn:uuid:5f7c2a52-8b0c-4a8e-9d51-3f0a1c2b9e10"}
    ]
    imported = _import(bundle, _as_of(case))
    assert imported.case.symptoms[-1].reporter == "carer"


def test_an_ehr_patient_reported_resolved_does_not_end_neurological_loading() -> None:
    """The hazard contract v1.1 closes: a patient's "resolved" read as a clinician's would end
    loading after two doses."""
    case = _scenario("neuro-patient-diary-resolved-loading-continues")
    bundle = _ehr_style(case)
    for s in _symptoms(bundle):  # an EHR that writes no performer on its own records
        s.pop("performer")
    _symptoms(bundle)[-1]["performer"] = [{"reference": "Patient/ehr-77"}]
    imported = _import(bundle, _as_of(case))
    assert [s.reporter for s in imported.case.symptoms] == ["clinician", "patient"]
    assessment = evaluate(imported.case, K, as_of=_as_of(case))
    assert assessment.phase == "loading"
    assert "NEURO_REVIEW_DUE" in {f.code for f in assessment.findings}
    assert assessment.regimen is not None
    assert assessment.regimen.loading is not None
    assert assessment.regimen.loading.complete is False


def test_a_performer_b12plan_cannot_place_is_read_as_the_patient_s_with_a_warning() -> None:
    case = _scenario("neuro-patient-diary-resolved-loading-continues")
    bundle = _ehr_style(case)
    _symptoms(bundle)[-1]["performer"] = [{"display": "Dr Who?"}]
    imported = _import(bundle, _as_of(case))
    assert imported.case.symptoms[-1].reporter == "patient"
    (warned,) = imported.warnings
    assert warned["loc"].endswith(".resource.performer")
    assert "never ends neurological loading" in warned["msg"]


# --- decisions --------------------------------------------------------------------------------


def test_a_decision_is_a_final_clinical_decision_observation() -> None:
    case = _scenario("neuro-decision-ends-loading")
    bundle = bundle_of(case, knowledge=K)
    (decision,) = [
        r
        for r in _resources(bundle, "Observation")
        if any(c["system"] == f"{BASE}/CodeSystem/decision" for c in _codings(r))
    ]
    assert decision["status"] == "final"
    assert decision["category"][0]["coding"][0]["code"] == "clinical-decision"
    assert decision["category"][0]["coding"][0]["system"] == (
        f"{BASE}/CodeSystem/observation-category"
    )
    assert decision["code"]["coding"][0]["code"] == "neuro_loading_complete"
    assert decision["effectiveDateTime"] == "2026-01-20"
    assert decision["performer"] == [{"type": "Practitioner", "display": "Dr A Clinician"}]
    assert decision["note"] == [{"text": "No further improvement since 14 January on examination"}]


def test_an_ehr_decision_by_a_practitioner_reference_is_read() -> None:
    case = _scenario("neuro-decision-ends-loading")
    bundle = _ehr_style(case)
    (decision,) = [
        r
        for r in _resources(bundle, "Observation")
        if r["category"][0]["coding"][0]["code"] == "clinical-decision"
    ]
    decision["performer"] = [{"reference": "Practitioner/dr-a", "display": "Dr A Clinician"}]
    decision["effectiveDateTime"] = "2026-01-20T16:45:00+00:00"
    imported = _import(bundle, _as_of(case))
    assert case_to_dict(imported.case)["decisions"] == case["decisions"]
    assessment = evaluate(imported.case, K, as_of=_as_of(case))
    assert assessment.regimen is not None and assessment.regimen.loading is not None
    assert assessment.regimen.loading.complete is True


@pytest.mark.parametrize("missing", ["performer", "note"])
def test_a_decision_without_who_or_why_is_skipped_and_loading_continues(missing: str) -> None:
    case = _scenario("neuro-decision-ends-loading")
    bundle = _ehr_style(case)
    (decision,) = [
        r
        for r in _resources(bundle, "Observation")
        if r["category"][0]["coding"][0]["code"] == "clinical-decision"
    ]
    del decision[missing]
    imported = _import(bundle, _as_of(case))
    assert imported.case.decisions == ()
    (warned,) = imported.warnings
    assert warned["loc"].endswith(f".resource.{missing}")
    assert "this decision is skipped" in warned["msg"]
    assessment = evaluate(imported.case, K, as_of=_as_of(case))
    assert assessment.regimen is not None and assessment.regimen.loading is not None
    assert assessment.regimen.loading.complete is False
    with pytest.raises(BundleError):
        _import(bundle, _as_of(case), partial=False)


def test_a_preliminary_decision_is_not_yet_a_decision() -> None:
    case = _scenario("neuro-decision-ends-loading")
    bundle = _ehr_style(case)
    (decision,) = [
        r
        for r in _resources(bundle, "Observation")
        if r["category"][0]["coding"][0]["code"] == "clinical-decision"
    ]
    decision["status"] = "preliminary"
    imported = _import(bundle, _as_of(case))
    assert imported.case.decisions == ()
    (warned,) = imported.warnings
    assert warned["loc"].endswith(".resource.status")


def test_decision_text_fhir_cannot_carry_is_refused_by_its_field() -> None:
    case = copy.deepcopy(_scenario("neuro-decision-ends-loading"))
    case["decisions"][0]["by"] = "\u00a0"
    with pytest.raises(Exception, match=r"decisions\[0\]\.by"):
        bundle_of(case, knowledge=K)


# --- prior treatment --------------------------------------------------------------------------


def _prior(bundle: dict[str, Any]) -> dict[str, Any]:
    (found,) = [
        r
        for r in _resources(bundle, "MedicationStatement")
        if any(
            x["url"] == f"{BASE}/StructureDefinition/loading-completed"
            for x in r.get("extension", [])
        )
    ]
    return found


def test_prior_treatment_is_a_marked_medication_statement() -> None:
    case = _scenario("transferred-in-loading-done-elsewhere")
    statement = _prior(bundle_of(case, knowledge=K))
    assert statement["status"] == "active"
    assert statement["category"]["coding"][0]["code"] == "community"
    assert statement["effectivePeriod"] == {"start": "2024-06-01"}
    assert statement["extension"] == [
        {"url": f"{BASE}/StructureDefinition/loading-completed", "valueBoolean": True}
    ]
    concept = statement["medicationCodeableConcept"]
    assert concept["text"] == "vitamin B12 injections before the records here"
    assert [(c["system"], c["code"]) for c in concept["coding"]] == [(ATC, "B03BA")]
    assert "informationSource" not in statement


def test_loading_not_completed_travels_too() -> None:
    case = copy.deepcopy(_scenario("transferred-in-loading-done-elsewhere"))
    case["prior_treatment"]["loading_completed"] = False
    imported = _import(bundle_of(case, knowledge=K), _as_of(case))
    assert case_to_dict(imported.case)["prior_treatment"] == {
        "since": "2024-06-01",
        "loading_completed": False,
    }


def test_an_ehr_b12_statement_without_the_extension_is_not_prior_treatment() -> None:
    """It does not say whether loading was completed: a warning, never a guess."""
    case = _scenario("transferred-in-loading-done-elsewhere")
    bundle = _ehr_style(case)
    statement = _prior(bundle)
    del statement["extension"]
    statement["medicationCodeableConcept"] = {
        "coding": [{"system": RXNORM, "code": "317106"}],
        "text": "hydroxocobalamin 1 mg/mL injection",
    }
    imported = _import(bundle, _as_of(case))
    assert imported.case.prior_treatment is None
    assert imported.case.medications == ()
    (warned,) = imported.warnings
    assert "a B12 product in a MedicationStatement" in warned["msg"]


def test_two_prior_treatment_statements_are_a_conflict() -> None:
    case = _scenario("transferred-in-loading-done-elsewhere")
    bundle = _ehr_style(case)
    second = copy.deepcopy(_prior(bundle))
    second["id"] = "prior-2"
    second["effectivePeriod"] = {"start": "2025-01-01"}
    bundle["entry"].append({"resource": second})
    with pytest.raises(BundleError, match="a second prior-treatment statement"):
        _import(bundle, _as_of(case))


# --- breastfeeding ----------------------------------------------------------------------------


def test_breastfeeding_is_a_condition_with_its_snomed_code_both_ways() -> None:
    case = copy.deepcopy(_scenario("transferred-in-loading-done-elsewhere"))
    case["causes"] = ["breastfeeding"]
    bundle = bundle_of(case, knowledge=K)
    (condition,) = _resources(bundle, "Condition")
    assert (SNOMED, "413712001") in {(c["system"], c["code"]) for c in _codings(condition)}
    condition["code"]["coding"] = [c for c in _codings(condition) if c["system"] == SNOMED]
    assert _import(bundle, _as_of(case)).case.causes == ("breastfeeding",)
