"""Each record kind's fields are declared once, in ``b12plan.contract.records`` (ADR 0066).

The store's inputs (``b12plan.service.schemas``, also the REST bodies and the web forms' models)
extend the contract's models with only what the store adds; checks of meaning (vocabulary,
across fields) run when a knowledge base is in the validation context and are deferred, never
skipped, without one.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from b12plan.contract import CaseError, parse_case, records
from b12plan.contract.records import validation_context
from b12plan.core.knowledge import Knowledge
from b12plan.service import schemas
from b12plan.service.schemas import KINDS

STORE_EXTRAS: dict[str, set[str]] = {
    "administrations": {"note", "lot"},
}
"""What the store keeps besides the contract's fields, by kind (every other kind: ``note``)."""

CONTRACT_RECORDS = {
    name: cls
    for name, cls in vars(records).items()
    if inspect.isclass(cls)
    and issubclass(cls, records.Record)
    and cls.__module__ == records.__name__
}


def _own_fields(cls: type[BaseModel]) -> set[str]:
    """Fields a class declares itself (its own annotations, class variables aside)."""
    own: dict[str, Any] = inspect.get_annotations(cls)
    return {name for name, annotation in own.items() if "ClassVar" not in str(annotation)}


def _store_classes(cls: type[BaseModel]) -> list[type[BaseModel]]:
    return [c for c in cls.__mro__ if c.__module__ == schemas.__name__]


KIND_MODELS = [(name, kind.input) for name, kind in KINDS.items() if name != "causes"]


@pytest.mark.parametrize(("kind", "store_input"), KIND_MODELS, ids=[k for k, _ in KIND_MODELS])
def test_a_store_input_declares_only_what_the_store_adds(
    kind: str, store_input: type[schemas.RecordIn]
) -> None:
    contract = store_input.contract_model()  # type: ignore[attr-defined]
    assert contract in CONTRACT_RECORDS.values()
    assert contract.__name__ == store_input.__name__  # the same record, the same name
    extras = STORE_EXTRAS.get(kind, {"note"})
    assert set(store_input.model_fields) == set(contract.model_fields) | extras
    declared_by_the_store = set().union(*(_own_fields(c) for c in _store_classes(store_input)))
    assert declared_by_the_store == extras
    for name, field in contract.model_fields.items():
        inherited = store_input.model_fields[name]
        assert (inherited.annotation, inherited.metadata, inherited.default) == (
            field.annotation,
            field.metadata,
            field.default,
        ), name


def test_demographics_are_the_cases_patient_fields_plus_the_stores() -> None:
    contract = records.PatientDemographics
    assert issubclass(schemas.PatientIn, contract)
    assert _own_fields(schemas.PatientIn) == {"display_name", "jurisdiction", "note"}
    assert set(schemas.PatientIn.model_fields) - {"display_name", "jurisdiction", "note"} == set(
        contract.model_fields
    )


def test_a_cause_is_checked_by_the_contracts_cause_code(knowledge: Knowledge) -> None:
    """Causes are bare codes in the case; the store's cause record uses the contract's type."""
    assert _own_fields(schemas.CauseIn) == {"code"}
    with pytest.raises(ValidationError) as caught:
        schemas.CauseIn.model_validate({"code": "bad_luck"}, context=validation_context(knowledge))
    assert caught.value.errors()[0]["type"] == "unknown_causes"


def test_no_contract_record_is_declared_again_under_its_name_in_the_service() -> None:
    for name, cls in CONTRACT_RECORDS.items():
        twin = getattr(schemas, name, None)
        if twin is not None:
            assert issubclass(twin, cls), name


# --- checks of meaning: with a knowledge base, or deferred to parse_case ----------------------

D = dt.date
UNKNOWN: list[tuple[type[BaseModel], dict[str, Any], str, str]] = [
    # (store input, values with one unknown code, field, error type with a knowledge base)
    (schemas.SymptomIn, {"code": "tiredness", "date": D(2026, 1, 2), "status": "present"},
     "code", "unknown_symptoms"),
    (schemas.ObservationIn, {"code": "b12_total", "date": D(2026, 1, 2), "value": 98,
     "unit": "pmol"}, "unit", "unknown_unit"),
    (schemas.AdministrationIn, {"date": D(2026, 1, 2), "product": "hydroxocobalamin", "dose": 1,
     "unit": "mg", "route": "IV push"}, "route", "unknown_routes"),
    (schemas.PrescriptionIn, {"product": "elixir", "dose": 1, "unit": "mg", "route": "IM",
     "phase": "loading", "interval_days": 2, "start": D(2026, 1, 2)},
     "product", "unknown_products"),
    (schemas.MedicationIn, {"code": "aspirin", "start": D(2026, 1, 2)},
     "code", "unknown_medications"),
    (schemas.AdverseEventIn, {"code": "hiccups", "date": D(2026, 1, 2)},
     "code", "unknown_adverse_events"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "values", "field", "type_"), UNKNOWN, ids=[m.__name__ for m, *_ in UNKNOWN]
)
def test_vocabulary_is_checked_with_a_knowledge_base_and_deferred_without(
    knowledge: Knowledge, model: type[BaseModel], values: dict[str, Any], field: str, type_: str
) -> None:
    shape_only = model.model_validate(values)  # a REST body or a web form: shape only
    assert getattr(shape_only, field) == values[field]
    with pytest.raises(ValidationError) as caught:
        model.model_validate(values, context=validation_context(knowledge))
    ((error),) = caught.value.errors()
    assert error["type"] == type_
    assert [*error["loc"], *([error["ctx"]["field"]] if "field" in error.get("ctx", {}) else [])][
        -1
    ] == field


def test_checks_across_fields_wait_for_the_case(knowledge: Knowledge) -> None:
    ended_first = {"code": "metformin", "start": "2026-02-01", "end": "2026-01-01"}
    schemas.MedicationIn.model_validate(ended_first)  # shape only
    doc = {"schema_version": 1, "as_of": "2026-03-01", "medications": [ended_first]}
    with pytest.raises(CaseError) as caught:
        parse_case(doc, knowledge)
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [
        ("medications[0].end", "end_before_start")
    ]


def test_a_decision_needs_its_author_in_a_case_but_not_in_a_request(knowledge: Knowledge) -> None:
    decision = {"code": "neuro_loading_complete", "date": "2026-02-01", "reason": "No change."}
    assert schemas.DecisionIn.model_validate(decision).by is None  # the service names the user
    doc = {"schema_version": 1, "as_of": "2026-03-01", "decisions": [decision]}
    with pytest.raises(CaseError) as caught:
        parse_case(doc, knowledge)
    assert [(e["loc"], e["msg"], e["type"]) for e in caught.value.errors] == [
        ("decisions[0].by", "required", "missing")
    ]


# --- shape: the same limits everywhere ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ("tired\x00ness", "nul_character"),
        ("x" * 10_000, "string_too_long"),
        ("", "string_too_short"),
    ],
    ids=["nul", "ten-kilobytes", "empty"],
)
def test_a_code_no_database_could_hold_is_refused_by_the_contract_too(
    knowledge: Knowledge, value: str, type_: str
) -> None:
    doc = {
        "schema_version": 1,
        "as_of": "2026-03-01",
        "symptoms": [{"code": value, "date": "2026-01-02", "status": "present"}],
    }
    with pytest.raises(CaseError) as caught:
        parse_case(doc, knowledge)
    assert [(e["loc"], e["type"]) for e in caught.value.errors] == [("symptoms[0].code", type_)]


@pytest.mark.parametrize("dose", ["1", True, float("inf")], ids=["text", "bool", "infinite"])
def test_a_dose_is_a_number_for_every_caller(dose: object) -> None:
    values = {"date": "2026-01-02", "product": "hydroxocobalamin", "unit": "mg", "route": "IM"}
    for model in (records.AdministrationIn, schemas.AdministrationIn):
        with pytest.raises(ValidationError):
            model.model_validate({**values, "dose": dose})


def test_python_callers_may_pass_dates_but_not_datetimes() -> None:
    values = {"code": "hiccups", "date": D(2026, 1, 2)}
    assert records.AdverseEventIn.model_validate(values).date == D(2026, 1, 2)
    with pytest.raises(ValidationError) as caught:
        records.AdverseEventIn.model_validate({**values, "date": dt.datetime(2026, 1, 2, 9)})
    assert caught.value.errors()[0]["type"] == "date_type"


def test_the_case_entry_holds_the_contracts_fields_only() -> None:
    given = schemas.AdministrationIn(
        date=D(2026, 1, 2),
        product="hydroxocobalamin",
        dose=1.0,
        unit="mg",
        route="IM",
        lot="HX1",
        note="left arm",
    )
    assert given.case_entry() == {
        "date": "2026-01-02",
        "product": "hydroxocobalamin",
        "dose": 1,
        "unit": "mg",
        "route": "IM",
    }
    assert schemas.CauseIn(code="pernicious_anaemia").case_entry() == "pernicious_anaemia"


def test_the_api_documents_examples_and_descriptions() -> None:
    schema = schemas.SymptomIn.model_json_schema()
    assert schema["examples"][0]["code"] == "paraesthesia"
    assert "clinician" in schema["properties"]["reporter"]["description"]
    assert "by" not in schemas.DecisionIn.model_json_schema().get("required", [])
