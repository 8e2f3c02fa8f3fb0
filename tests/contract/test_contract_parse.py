"""Case JSON in: what is accepted, what becomes of it, and the exact field path of each refusal."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from b12plan.contract import CaseError, case_to_dict, parse_case, parse_case_json
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.knowledge import load_knowledge

KNOWLEDGE = load_knowledge()
ANALYTE_UNITS = [(a.code, u.symbol) for a in KNOWLEDGE.analytes for u in a.units]
ANALYTE_LOINCS = [(a.code, code) for a in KNOWLEDGE.analytes for code in a.loinc]


def errors_of(data: object, knowledge: Knowledge) -> list[dict[str, str]]:
    with pytest.raises(CaseError) as caught:
        parse_case(data, knowledge)
    return caught.value.errors


def test_contract_example_becomes_a_case(doc: dict[str, Any], knowledge: Knowledge) -> None:
    case = parse_case(doc, knowledge)
    assert case.as_of == dt.date(2026, 3, 1)
    assert case.jurisdiction == "GB"
    assert case.patient.id == "p-001"
    assert case.patient.birth_date == dt.date(1958, 4, 2)
    assert case.causes == ("pernicious_anaemia",)
    assert [s.status for s in case.symptoms] == ["present", "improving"]
    b12 = case.observations[0]
    assert (b12.code, b12.value, b12.unit) == ("b12_total", 98, "pmol/L")
    assert case.administrations[0].dose == 1
    assert case.administrations[0].unit == "mg"
    rx = case.prescription
    assert rx is not None
    assert (rx.phase, rx.interval_days, rx.start) == ("loading", 2, dt.date(2026, 1, 5))
    assert case.medications[0].code == "folic_acid"
    assert case.adverse_events[0].code == "injection_site_pain"


def test_only_schema_version_and_as_of_are_required(knowledge: Knowledge) -> None:
    case = parse_case({"schema_version": 1, "as_of": "2026-03-01"}, knowledge)
    assert case == Case(as_of=dt.date(2026, 3, 1))
    assert case.jurisdiction == "GB"


def test_null_optional_objects_read_as_absent(knowledge: Knowledge) -> None:
    data = {"schema_version": 1, "as_of": "2026-03-01", "patient": None, "prescription": None}
    assert parse_case(data, knowledge).prescription is None


def test_us_jurisdiction_is_kept(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["jurisdiction"] = "US"
    assert parse_case(doc, knowledge).jurisdiction == "US"


def test_round_trip_through_case_to_dict(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["observations"].append(
        {
            "loinc": "13964-2",
            "date": "2026-02-20",
            "value": 0.52,
            "unit": "µmol/L",
            "reference_low": 0,
            "reference_high": 0.4,
        }
    )
    doc["administrations"][0].update({"brand": "Neo-Cytamen", "given_by": "clinic", "site": "arm"})
    doc["prescription"]["end"] = "2026-06-01"
    doc["medications"][0]["end"] = "2026-02-01"
    case = parse_case(doc, knowledge)
    written = case_to_dict(case)
    assert parse_case(json.loads(json.dumps(written)), knowledge) == case
    assert written["administrations"][0]["dose"] == 1  # 1.0 is written as people write it
    assert written["observations"][-1]["code"] == "mma"


def test_list_order_does_not_matter(doc: dict[str, Any], knowledge: Knowledge) -> None:
    reordered = copy.deepcopy(doc)
    for key in ("symptoms", "observations"):
        reordered[key].reverse()
    assert parse_case(reordered, knowledge) == parse_case(doc, knowledge)


@pytest.mark.parametrize(
    ("code", "unit"), ANALYTE_UNITS, ids=[f"{c}-{u}" for c, u in ANALYTE_UNITS]
)
def test_every_unit_is_accepted_for_its_analyte(
    doc: dict[str, Any], knowledge: Knowledge, code: str, unit: str
) -> None:
    doc["observations"] = [{"code": code, "date": "2026-01-01", "value": 1.5, "unit": unit}]
    observation = parse_case(doc, knowledge).observations[0]
    assert (observation.code, observation.unit, observation.value) == (code, unit, 1.5)


def test_contract_units_are_all_in_the_knowledge_base() -> None:
    """The contract's unit list, read from contract.md, must be what the parser accepts."""
    contract = {
        "b12_total": {"pmol/L", "pg/mL", "ng/L"},
        "b12_active": {"pmol/L"},
        "mma": {"µmol/L", "umol/L", "nmol/L"},
        "homocysteine": {"µmol/L", "umol/L"},
        "haemoglobin": {"g/L", "g/dL"},
        "mcv": {"fL"},
        "folate": {"µg/L", "ug/L", "ng/mL", "nmol/L"},
        "potassium": {"mmol/L"},
    }
    assert {a.code: {u.symbol for u in a.units} for a in KNOWLEDGE.analytes} == contract


@pytest.mark.parametrize(("code", "loinc"), ANALYTE_LOINCS, ids=[x[1] for x in ANALYTE_LOINCS])
def test_loinc_alone_names_the_analyte(
    doc: dict[str, Any], knowledge: Knowledge, code: str, loinc: str
) -> None:
    unit = knowledge.analyte(code).canonical_unit
    doc["observations"] = [{"loinc": loinc, "date": "2026-01-01", "value": 2, "unit": unit}]
    observation = parse_case(doc, knowledge).observations[0]
    assert (observation.code, observation.loinc) == (code, loinc)


def test_loinc_and_code_that_agree_are_accepted(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["observations"][0]["loinc"] = "2132-9"
    assert parse_case(doc, knowledge).observations[0].loinc == "2132-9"


def test_records_after_as_of_are_accepted_and_left_out_on_evaluation(
    doc: dict[str, Any], knowledge: Knowledge
) -> None:
    doc["administrations"].append(
        {
            "date": "2026-04-01",
            "product": "hydroxocobalamin",
            "dose": 1,
            "unit": "mg",
            "route": "IM",
        }
    )
    case = parse_case(doc, knowledge)
    assert len(case.administrations) == 2
    assert len(case.known_on(case.as_of).administrations) == 1


def test_end_on_the_start_date_is_valid(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["medications"][0]["end"] = doc["medications"][0]["start"]
    assert parse_case(doc, knowledge).medications[0].end == dt.date(2026, 1, 5)


def test_zero_lab_value_is_valid(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["observations"][0]["value"] = 0
    assert parse_case(doc, knowledge).observations[0].value == 0


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    """A mutation setting ``a.b[0].c`` style paths on the example document."""

    def apply(doc: dict[str, Any]) -> None:
        target: Any = doc
        parts = path.replace("[", ".").replace("]", "").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _drop(path: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[part]
        del target[last]

    return apply


def _append(key: str, record: dict[str, Any]) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        doc[key].append(record)

    return apply


def _drop_in(key: str, index: int, field: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        del doc[key][index][field]

    return apply


OBS = {"code": "b12_total", "date": "2026-01-01", "value": 100, "unit": "pmol/L"}

INVALID: list[tuple[str, Mutation, str, str]] = [
    # (id, mutation, loc, type)
    ("missing-as-of", _drop("as_of"), "as_of", "missing"),
    ("missing-schema-version", _drop("schema_version"), "schema_version", "missing"),
    ("schema-version-2", _set("schema_version", 2), "schema_version", "schema_version"),
    ("schema-version-text", _set("schema_version", "1"), "schema_version", "int_type"),
    ("schema-version-bool", _set("schema_version", True), "schema_version", "int_type"),
    ("as-of-not-iso", _set("as_of", "01/03/2026"), "as_of", "date_format"),
    ("as-of-compact-iso", _set("as_of", "20260301"), "as_of", "date_format"),
    ("as-of-impossible", _set("as_of", "2026-02-30"), "as_of", "date_format"),
    ("as-of-datetime", _set("as_of", "2026-03-01T10:00:00"), "as_of", "date_format"),
    ("as-of-number", _set("as_of", 20260301), "as_of", "date_type"),
    ("unknown-root-key", _set("notes", "x"), "notes", "extra_forbidden"),
    ("unknown-patient-key", _set("patient.name", "Ann"), "patient.name", "extra_forbidden"),
    (
        "unknown-observation-key",
        _set("observations[1].flag", "L"),
        "observations[1].flag",
        "extra_forbidden",
    ),
    ("jurisdiction-fr", _set("jurisdiction", "FR"), "jurisdiction", "unknown_jurisdictions"),
    ("sex-abbreviated", _set("patient.sex", "F"), "patient.sex", "literal_error"),
    (
        "birth-after-as-of",
        _set("patient.birth_date", "2026-03-02"),
        "patient.birth_date",
        "birth_after_as_of",
    ),
    ("causes-not-list", _set("causes", "pernicious_anaemia"), "causes", "list_type"),
    ("unknown-cause", _set("causes[0]", "anaemia"), "causes[0]", "unknown_causes"),
    (
        "unknown-symptom",
        _set("symptoms[1].code", "tingling"),
        "symptoms[1].code",
        "unknown_symptoms",
    ),
    (
        "unknown-status",
        _set("symptoms[0].status", "better"),
        "symptoms[0].status",
        "unknown_statuses",
    ),
    ("symptom-missing-date", _drop_in("symptoms", 0, "date"), "symptoms[0].date", "missing"),
    (
        "unknown-unit",
        _append("observations", {**OBS, "unit": "pmol"}),
        "observations[2].unit",
        "unknown_unit",
    ),
    (
        "unit-of-another-analyte",
        _set("observations[1].unit", "pmol/L"),
        "observations[1].unit",
        "unknown_unit",
    ),
    (
        "unknown-observation-code",
        _set("observations[0].code", "vitamin_b12"),
        "observations[0].code",
        "unknown_observation",
    ),
    (
        "observation-without-code-or-loinc",
        _append("observations", {"date": "2026-01-01", "value": 1, "unit": "pmol/L"}),
        "observations[2].code",
        "missing",
    ),
    (
        "unknown-loinc",
        _append("observations", {**OBS, "loinc": "9999-9"}),
        "observations[2].loinc",
        "unknown_loinc",
    ),
    (
        "loinc-disagrees-with-code",
        _set("observations[1].loinc", "2132-9"),
        "observations[1].loinc",
        "code_mismatch",
    ),
    ("value-as-text", _set("observations[0].value", "98"), "observations[0].value", "float_type"),
    ("value-as-bool", _set("observations[0].value", True), "observations[0].value", "float_type"),
    (
        "value-nan",
        _set("observations[0].value", float("nan")),
        "observations[0].value",
        "finite_number",
    ),
    (
        "negative-value",
        _set("observations[0].value", -1),
        "observations[0].value",
        "greater_than_equal",
    ),
    (
        "reference-range-inverted",
        _append(
            "observations",
            {**OBS, "code": "b12_total", "reference_low": 300, "reference_high": 200},
        ),
        "observations[2].reference_high",
        "reference_range",
    ),
    (
        "record-before-birth",
        _set("observations[1].date", "1950-01-01"),
        "observations[1].date",
        "before_birth",
    ),
    ("zero-dose", _set("administrations[0].dose", 0), "administrations[0].dose", "greater_than"),
    (
        "negative-dose",
        _set("administrations[0].dose", -1),
        "administrations[0].dose",
        "greater_than",
    ),
    ("dose-as-text", _set("administrations[0].dose", "1"), "administrations[0].dose", "float_type"),
    (
        "dose-as-bool",
        _set("administrations[0].dose", True),
        "administrations[0].dose",
        "float_type",
    ),
    (
        "unknown-dose-unit",
        _set("administrations[0].unit", "mL"),
        "administrations[0].unit",
        "unknown_dose_units",
    ),
    (
        "unknown-product",
        _set("administrations[0].product", "cobalamin"),
        "administrations[0].product",
        "unknown_products",
    ),
    (
        "unknown-route",
        _set("administrations[0].route", "im"),
        "administrations[0].route",
        "unknown_routes",
    ),
    (
        "given-by-unknown",
        _set("administrations[0].given_by", "nurse"),
        "administrations[0].given_by",
        "literal_error",
    ),
    (
        "interval-zero",
        _set("prescription.interval_days", 0),
        "prescription.interval_days",
        "greater_than",
    ),
    (
        "interval-fractional",
        _set("prescription.interval_days", 2.5),
        "prescription.interval_days",
        "int_type",
    ),
    (
        "prescription-phase",
        _set("prescription.phase", "induction"),
        "prescription.phase",
        "literal_error",
    ),
    ("prescription-no-start", _drop("prescription.start"), "prescription.start", "missing"),
    (
        "prescription-end-before-start",
        _set("prescription.end", "2026-01-04"),
        "prescription.end",
        "end_before_start",
    ),
    (
        "prescription-before-birth",
        _set("prescription.start", "1957-01-01"),
        "prescription.start",
        "before_birth",
    ),
    (
        "medication-end-before-start",
        _set("medications[0].end", "2025-01-01"),
        "medications[0].end",
        "end_before_start",
    ),
    (
        "unknown-medication",
        _set("medications[0].code", "aspirin"),
        "medications[0].code",
        "unknown_medications",
    ),
    (
        "unknown-adverse-event",
        _set("adverse_events[0].code", "fainting"),
        "adverse_events[0].code",
        "unknown_adverse_events",
    ),
    ("prescription-as-list", _set("prescription", []), "prescription", "model_type"),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "type_"), [x[1:] for x in INVALID], ids=[x[0] for x in INVALID]
)
def test_invalid_case_names_the_field(
    doc: dict[str, Any], knowledge: Knowledge, mutate: Mutation, loc: str, type_: str
) -> None:
    mutate(doc)
    errors = errors_of(doc, knowledge)
    assert {"loc": loc, "type": type_} in [{"loc": e["loc"], "type": e["type"]} for e in errors]
    assert all(e["msg"] for e in errors)


def test_unknown_unit_message_follows_the_contract(
    doc: dict[str, Any], knowledge: Knowledge
) -> None:
    doc["observations"].append({**OBS, "code": "b12_total", "unit": "pmol"})
    (error,) = errors_of(doc, knowledge)
    assert error["loc"] == "observations[2].unit"
    assert error["msg"].startswith("unknown unit 'pmol'")
    assert "pmol/L, pg/mL, ng/L" in error["msg"]  # and says what would be accepted


def test_unknown_key_message_lists_the_allowed_keys(
    doc: dict[str, Any], knowledge: Knowledge
) -> None:
    doc["prescription"]["frequency"] = "alternate days"
    (error,) = errors_of(doc, knowledge)
    assert error["loc"] == "prescription.frequency"
    assert "interval_days" in error["msg"]


def test_every_problem_is_reported_at_once(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["observations"][0]["unit"] = "pmol"
    doc["administrations"][0]["dose"] = -1
    doc["extra"] = True
    locs = {e["loc"] for e in errors_of(doc, knowledge)}
    assert locs == {"observations[0].unit", "administrations[0].dose", "extra"}


def test_case_error_text_is_one_line_per_problem(doc: dict[str, Any], knowledge: Knowledge) -> None:
    doc["observations"][0]["unit"] = "pmol"
    doc["administrations"][0]["dose"] = 0
    with pytest.raises(CaseError) as caught:
        parse_case(doc, knowledge)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("observations[0].unit: unknown unit 'pmol'")
    assert lines[1].startswith("administrations[0].dose: must be greater than 0")


@pytest.mark.parametrize("data", [None, 5, "case", [], [{"schema_version": 1}]])
def test_a_document_that_is_not_an_object_is_refused(data: object, knowledge: Knowledge) -> None:
    (error,) = errors_of(data, knowledge)
    assert error["loc"] == ""
    assert error["msg"].startswith("expected an object")
    assert str(CaseError([error])).startswith("(case): ")


def test_malformed_json_is_a_case_error(knowledge: Knowledge) -> None:
    with pytest.raises(CaseError) as caught:
        parse_case_json('{"schema_version": 1,', knowledge)
    (error,) = caught.value.errors
    assert error["type"] == "json_invalid"
    assert "line 1" in error["msg"]


def test_duplicate_json_keys_are_refused_not_silently_dropped(knowledge: Knowledge) -> None:
    text = '{"schema_version": 1, "as_of": "2026-03-01", "as_of": "2026-04-01"}'
    with pytest.raises(CaseError) as caught:
        parse_case_json(text, knowledge)
    assert caught.value.errors[0]["type"] == "json_duplicate_key"
    assert "'as_of'" in caught.value.errors[0]["msg"]


def test_json_text_parses_like_the_dict(doc: dict[str, Any], knowledge: Knowledge) -> None:
    assert parse_case_json(json.dumps(doc), knowledge) == parse_case(doc, knowledge)
