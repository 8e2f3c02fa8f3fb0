"""Real-world-shaped exports: a US Core $everything and a Synthea transaction Bundle.

``ehr/us-core-dayton.json``: a searchset as a US EHR sends it (US Core profiles, RxNorm-only
orders, LOINC labs in US units, an ICD-10-CM problem list, a "QNS" result, a result under a local
code only, a monthly order). ``ehr/synthea-deceased-boston.json``: a Synthea-style transaction
(urn:uuid references, encounters, immunizations, a deceased patient).
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from b12plan.contract import case_to_dict
from b12plan.core import evaluate
from b12plan.fhir import BundleError, Imported, import_bundle
from b12plan.knowledge import load_knowledge
from tests.fhir.support import read_back

EHR = Path(__file__).parent / "ehr"
AS_OF = date(2026, 3, 1)
K = load_knowledge()


def _bundle(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EHR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _import(bundle: dict[str, Any], **kwargs: Any) -> Imported:
    return import_bundle(bundle, as_of=AS_OF, knowledge=K, **kwargs)


def _entry(bundle: dict[str, Any], resource_id: str) -> int:
    return next(n for n, e in enumerate(bundle["entry"]) if e["resource"]["id"] == resource_id)


def _warned(imported: Imported, bundle: dict[str, Any], resource_id: str) -> list[str]:
    at = f"entry[{_entry(bundle, resource_id)}].resource"
    return [w["msg"] for w in imported.warnings if w["loc"].startswith(at)]


@pytest.fixture
def dayton() -> dict[str, Any]:
    return _bundle("us-core-dayton")


@pytest.fixture
def boston() -> dict[str, Any]:
    return _bundle("synthea-deceased-boston")


def test_rxnorm_only_metformin_and_omeprazole_are_risk_factors(dayton: dict[str, Any]) -> None:
    case = case_to_dict(_import(dayton).case)
    assert {"code": "metformin", "start": "2014-02-10"} in case["medications"]
    assert {"code": "ppi", "start": "2021-06-10"} in case["medications"]


def test_a_us_address_gets_the_us_protocols_and_30_day_months(dayton: dict[str, Any]) -> None:
    case = case_to_dict(_import(dayton).case)
    assert case["jurisdiction"] == "US"
    assert case["prescription"]["interval_days"] == 30, "FHIR 1 'mo' is 30 days in the US"


def test_the_qns_result_is_left_out_and_reported_the_rest_is_read(dayton: dict[str, Any]) -> None:
    imported = _import(dayton)
    (msg,) = _warned(imported, dayton, "mv-lab-b12-qns")
    assert "valueString 'QNS'" in msg and "skipped" in msg
    b12 = [o for o in case_to_dict(imported.case)["observations"] if o["code"] == "b12_total"]
    assert [o["date"] for o in b12] == ["2025-11-18"]
    assert len(imported.case.administrations) == 3


def test_a_result_under_a_local_code_only_is_reported(dayton: dict[str, Any]) -> None:
    imported = _import(dayton)
    (msg,) = _warned(imported, dayton, "mv-lab-mma-local")
    assert msg.startswith("no LOINC code (") and "LAB3318" in msg
    assert not any(o["code"] == "mma" for o in case_to_dict(imported.case)["observations"])


def test_unrecognised_and_name_matched_medications_are_reported(dayton: dict[str, Any]) -> None:
    imported = _import(dayton)
    (lisinopril,) = _warned(imported, dayton, "mv-rx-lisinopril")
    assert "not recognised" in lisinopril and "314076" in lisinopril
    by_name, stopped = _warned(imported, dayton, "mv-rx-panto")
    assert "read as 'ppi' from its name" in by_name
    assert "no end date" in stopped
    (diabetes,) = _warned(imported, dayton, "mv-cond-t2dm")
    assert "E11.9" in diabetes


def test_results_of_no_concern_to_b12plan_stay_quiet(dayton: dict[str, Any]) -> None:
    """A LOINC b12plan does not use (blood pressure) is recognised as not ours: no warning."""
    assert _warned(_import(dayton), dayton, "mv-vitals-bp") == []


def test_every_warning_names_a_path_or_is_the_summary(dayton: dict[str, Any]) -> None:
    for w in _import(dayton).warnings:
        assert set(w) == {"loc", "msg", "type", "severity"}
        assert w["severity"] in ("warning", "information")
        assert w["loc"].startswith("entry[") or w["severity"] == "information"


def test_the_imported_us_record_is_assessed_under_a_us_protocol(dayton: dict[str, Any]) -> None:
    assessment = evaluate(_import(dayton).case, K, as_of=AS_OF)
    assert assessment.regimen is not None
    assert assessment.regimen.protocol_id.startswith("us-")


def test_strict_reading_still_refuses_the_qns_result(dayton: dict[str, Any]) -> None:
    """CDS Hooks reads strictly: advice from part of a record must say so (a card)."""
    with pytest.raises(BundleError) as caught:
        read_back(dayton, as_of=AS_OF, knowledge=K)
    assert any("valueString 'QNS'" in e["msg"] for e in caught.value.errors)


def test_a_synthea_deceased_patient_is_read_with_the_date_and_gets_no_plan(
    boston: dict[str, Any],
) -> None:
    imported = _import(boston)
    assert imported.deceased == "2026-02-14T03:12:44-05:00"
    assert imported.case.patient.deceased_date == date(2026, 2, 14)
    assert _warned(imported, boston, boston["entry"][0]["resource"]["id"]) == []
    assert imported.case.jurisdiction == "US"
    assert imported.case.causes == ("pernicious_anaemia",)
    assessment = evaluate(imported.case, K, as_of=AS_OF)
    assert [f.code for f in assessment.findings] == ["PATIENT_DECEASED"]
    assert (assessment.next_dose, assessment.schedule, assessment.monitoring) == (None, (), ())


def test_synthea_urn_uuid_references_and_molar_folate(boston: dict[str, Any]) -> None:
    case = case_to_dict(_import(boston).case)
    molar = {"code": "folate", "loinc": "14732-2", "date": "2025-10-06"}
    assert {**molar, "value": 21.5, "unit": "nmol/L"} in case["observations"]
    assert case["medications"] == [{"code": "metformin", "start": "2012-07-16"}]


def test_resource_types_not_read_are_counted_in_one_information_issue(
    boston: dict[str, Any],
) -> None:
    (summary,) = [w for w in _import(boston).warnings if w["severity"] == "information"]
    assert summary["msg"].endswith("Encounter x1, Immunization x1")


def test_deceased_without_a_date_is_read_as_deceased_on_as_of_with_a_warning(
    boston: dict[str, Any],
) -> None:
    patient = boston["entry"][0]["resource"]
    del patient["deceasedDateTime"]
    patient["deceasedBoolean"] = True
    imported = _import(boston)
    assert imported.deceased is True
    assert imported.case.patient.deceased_date == AS_OF
    (msg,) = _warned(imported, boston, patient["id"])
    assert "recorded deceased, date unknown" in msg
    assessment = evaluate(imported.case, K, as_of=AS_OF)
    assert [f.code for f in assessment.findings] == ["PATIENT_DECEASED"]


def test_deceased_false_is_nothing(boston: dict[str, Any]) -> None:
    patient = boston["entry"][0]["resource"]
    del patient["deceasedDateTime"]
    patient["deceasedBoolean"] = False
    imported = _import(boston)
    assert imported.deceased is None
    assert imported.case.patient.deceased_date is None
    assert _warned(imported, boston, patient["id"]) == []


@pytest.mark.parametrize(
    ("countries", "default", "expected", "warned"),
    [
        (["United Kingdom"], "US", "GB", False),
        (["England"], "US", "GB", False),
        (["united states"], "GB", "US", False),
        (["France"], "US", "US", True),
        ([], "US", "US", False),
        (["US", "Wales"], "GB", "GB", True),
    ],
    ids=["uk-name", "england", "us-name", "unknown-country", "no-address", "two-countries"],
)
def test_the_jurisdiction_follows_the_address_else_the_configured_default(
    boston: dict[str, Any], countries: list[str], default: str, expected: str, warned: bool
) -> None:
    bundle = copy.deepcopy(boston)
    patient = bundle["entry"][0]["resource"]
    patient["address"] = [{"city": "Somewhere", "country": c} for c in countries]
    imported = _import(bundle, default_jurisdiction=default)
    assert imported.case.jurisdiction == expected
    address_warnings = [w for w in imported.warnings if ".address" in w["loc"]]
    assert bool(address_warnings) is warned


def test_b12plan_s_own_jurisdiction_extension_wins_over_the_address(
    boston: dict[str, Any],
) -> None:
    from b12plan.fhir import systems

    patient = boston["entry"][0]["resource"]
    patient["extension"].append({"url": systems().jurisdiction, "valueCode": "GB"})
    assert _import(boston).case.jurisdiction == "GB"


def test_a_record_of_another_patient_is_still_an_error(boston: dict[str, Any]) -> None:
    """Partial import never reaches the wrong-patient hazard: that stays a hard error."""
    boston["entry"][6]["resource"]["subject"] = {"reference": "urn:uuid:someone-else"}
    with pytest.raises(BundleError) as caught:
        _import(boston)
    assert caught.value.errors[0]["loc"] == "entry[6].resource.subject.reference"


def test_a_symptom_coded_only_in_snomed_ct_is_named_in_its_warning(
    boston: dict[str, Any],
) -> None:
    """An EHR's symptom has no b12plan status: it is reported as that symptom, not as a lab."""
    patient_ref = boston["entry"][0]["fullUrl"]
    boston["entry"].append(
        {
            "fullUrl": "urn:uuid:3f0c8a52-7d1e-4c4b-9a43-5b8f1e2d7c61",
            "resource": {
                "resourceType": "Observation",
                "id": "3f0c8a52-7d1e-4c4b-9a43-5b8f1e2d7c61",
                "status": "final",
                "code": {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "91019004"},
                    ]
                },
                "subject": {"reference": patient_ref},
                "effectiveDateTime": "2025-10-06",
            },
            "request": {"method": "POST", "url": "Observation"},
        }
    )
    imported = _import(boston)
    (msg,) = _warned(imported, boston, "3f0c8a52-7d1e-4c4b-9a43-5b8f1e2d7c61")
    assert msg.startswith("the symptom 'paraesthesia' (SNOMED CT) without b12plan's status")
