"""Through the whole app, the store's ``Case`` is parsed once and handed on: CDS Hooks, the
assessment and ``$everything`` share it, and a FHIR import is parsed by the importer and then
only checked again as the store will hold it (ADR 0068)."""

from __future__ import annotations

import pytest

from b12plan.fhir import case_to_bundle
from b12plan.service.schemas import Principal
from tests.api.conftest import Api
from tests.cds_hooks.ehr import hook_request
from tests.parse_count import count_parses

PID = "demo-01"


def test_cds_hooks_the_assessment_and_everything_share_the_store_s_case(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = api.clinician()
    parsed = count_parses(monkeypatch)
    cds = api.client.post(
        "/cds-services/b12plan-patient-view",
        json=hook_request("patient-view", PID),
        headers=headers,
    )
    assert cds.status_code == 200, cds.text
    assert [document["patient"]["id"] for document in parsed] == [PID], "the store's parse"
    assessment = api.client.get(f"/api/v1/patients/{PID}/assessment", headers=headers)
    everything = api.client.get(f"/fhir/Patient/{PID}/$everything", headers=headers)
    assert (assessment.status_code, everything.status_code) == (200, 200)
    assert len(parsed) == 1, "the record has not changed: its Case is used again"


def test_a_fhir_import_is_parsed_by_the_importer_then_checked_as_stored(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not parsed a third time on the way from the importer to the store."""
    stored_case = api.services.records.patient_case(Principal.system("test"), PID)
    bundle = case_to_bundle(stored_case, knowledge=api.services.knowledge)
    parsed = count_parses(monkeypatch)
    created = api.client.post("/fhir", json=bundle, headers=api.clinician())
    assert created.status_code == 201, created.text
    imported, stored = parsed
    assert imported["patient"]["id"] == PID, "the Bundle, read by the FHIR importer"
    new_id = created.headers["location"].removeprefix("Patient/")
    assert stored["patient"]["id"] == new_id, "the new patient's rows, checked before commit"
