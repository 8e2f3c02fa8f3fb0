"""The contract case JSON (v1.1): validated into ``b12plan.core.model.Case`` and written back.

Shared by the CLI, the REST API, the web app, CDS Hooks and the FHIR importer, so every entry
point accepts and refuses the same documents. Validation is strict on purpose: a dose of ``"1"``
or ``true``, an unknown key or an unknown unit is refused with the field path rather than
guessed at, because a guessed dose or unit is a clinical hazard. Vocabulary (codes, units,
products, routes) comes from the knowledge base, so a new analyte or unit is a data change, not
a code change.

Records dated after ``as_of`` are accepted and kept: ``Case.known_on`` leaves them out of an
evaluation (contract: they are "not yet recorded"), which lets callers replay the past.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Annotated, Any, cast

from pydantic import BaseModel, Strict, ValidationError, model_validator

from b12plan.contract.errors import FieldError, field_error, field_errors
from b12plan.contract.records import (
    RECORD_CONFIG,
    AdministrationIn,
    AdverseEventIn,
    CasePatient,
    CauseCode,
    DecisionIn,
    IsoDate,
    Jurisdiction,
    MedicationIn,
    ObservationIn,
    PrescriptionIn,
    PriorTreatmentIn,
    SymptomIn,
    Vocabulary,
    field_problem,
    json_number,
    parse_iso_date,
    validation_context,
    vocabulary,
)
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import (
    Administration,
    AdverseEvent,
    Case,
    Decision,
    Medication,
    Observation,
    Patient,
    Prescription,
    PriorTreatment,
    SymptomReport,
)

SCHEMA_VERSION = 1
"""The case contract version this module reads and writes."""

DEFAULT_JURISDICTION = "GB"
"""Contract v1: a case without ``jurisdiction`` follows the UK (NICE/BNF) protocols."""

__all__ = [
    "SCHEMA_VERSION",
    "CaseError",
    "case_to_dict",
    "parse_case",
    "parse_case_json",
    "parse_iso_date",
]


class CaseError(ValueError):
    """The case document is invalid; ``errors`` names every problem by its field path.

    Each error is ``{"loc": "observations[2].unit", "msg": "...", "type": "..."}``; ``loc`` is
    ``""`` for the document itself.
    """

    def __init__(self, errors: Sequence[FieldError] | Sequence[dict[str, str]]) -> None:
        # Plain dicts of the ``FieldError`` shape: the adapters that raise and read these (FHIR)
        # build them as dicts.
        self.errors: list[dict[str, str]] = [
            {"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors
        ]
        super().__init__(self._text())

    def _text(self) -> str:
        return "\n".join(f"{e['loc'] or '(case)'}: {e['msg']}" for e in self.errors)

    def __str__(self) -> str:
        return self._text()

    def lines(self) -> list[str]:
        """One ``loc: msg`` line per error, as the CLI prints them."""
        return self._text().splitlines()


class CaseIn(BaseModel):
    model_config = RECORD_CONFIG

    schema_version: Annotated[int, Strict()]
    as_of: IsoDate
    jurisdiction: Jurisdiction | None = None
    patient: CasePatient | None = None
    causes: list[CauseCode] = []
    symptoms: list[SymptomIn] = []
    observations: list[ObservationIn] = []
    administrations: list[AdministrationIn] = []
    prescription: PrescriptionIn | None = None
    medications: list[MedicationIn] = []
    adverse_events: list[AdverseEventIn] = []
    decisions: list[DecisionIn] = []
    prior_treatment: PriorTreatmentIn | None = None

    @model_validator(mode="after")
    def _known_version(self) -> CaseIn:
        if self.schema_version != SCHEMA_VERSION:
            raise field_problem(
                "schema_version",
                "schema_version",
                f"unsupported schema_version {self.schema_version}: "
                f"this b12plan reads version {SCHEMA_VERSION}",
            )
        return self


# --- parsing ----------------------------------------------------------------------------------


def parse_case(data: object, knowledge: Knowledge) -> Case:
    """A contract v1 case document (parsed JSON) as a core ``Case``; ``CaseError`` otherwise."""
    try:
        doc = CaseIn.model_validate(data, context=validation_context(knowledge))
    except ValidationError as exc:
        raise CaseError(field_errors(exc.errors(include_url=False), CaseIn)) from None
    problems = _date_problems(doc)
    if problems:
        raise CaseError(problems)
    return _to_core(doc, vocabulary(knowledge))


def parse_case_json(text: str, knowledge: Knowledge) -> Case:
    """Case JSON text as a core ``Case``; malformed JSON is a ``CaseError`` too."""
    return parse_case(load_json(text), knowledge)


def load_json(text: str) -> object:
    """JSON text to Python values, refusing duplicate keys (which would silently drop data)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise CaseError([field_error("", str(exc), "json_duplicate_key")]) from None
    except json.JSONDecodeError as exc:
        raise CaseError(
            [
                field_error(
                    "",
                    f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                    "json_invalid",
                )
            ]
        ) from None
    except RecursionError:
        raise CaseError(
            [field_error("", "invalid JSON: nested too deeply", "json_invalid")]
        ) from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"invalid JSON: duplicate key {key!r}")
        out[key] = value
    return out


def _date_problems(doc: CaseIn) -> list[FieldError]:
    """Dates that cannot be true: born after the evaluation date, or a record before birth."""
    problems: list[FieldError] = []
    birth = doc.patient.birth_date if doc.patient is not None else None
    if birth is None:
        return problems
    if birth > doc.as_of:
        problems.append(
            field_error(
                "patient.birth_date",
                f"birth date {birth.isoformat()} is after as_of {doc.as_of.isoformat()}",
                "birth_after_as_of",
            )
        )
    dated: list[tuple[str, dt.date]] = []
    for name, field in (
        ("symptoms", "date"),
        ("observations", "date"),
        ("administrations", "date"),
        ("medications", "start"),
        ("adverse_events", "date"),
        ("decisions", "date"),
    ):
        records: list[Any] = getattr(doc, name)
        dated.extend((f"{name}[{i}].{field}", getattr(r, field)) for i, r in enumerate(records))
    if doc.prescription is not None:
        dated.append(("prescription.start", doc.prescription.start))
    if doc.prior_treatment is not None:
        dated.append(("prior_treatment.since", doc.prior_treatment.since))
    if doc.patient is not None and doc.patient.deceased_date is not None:
        dated.append(("patient.deceased_date", doc.patient.deceased_date))
    for loc, when in dated:
        if when < birth:
            problems.append(
                field_error(
                    loc,
                    f"{when.isoformat()} is before the birth date {birth.isoformat()}",
                    "before_birth",
                )
            )
    return problems


def _to_core(doc: CaseIn, known: Vocabulary) -> Case:
    patient = doc.patient or CasePatient()
    rx = doc.prescription
    return Case(
        as_of=doc.as_of,
        schema_version=doc.schema_version,
        jurisdiction=doc.jurisdiction or DEFAULT_JURISDICTION,
        patient=Patient(
            id=patient.id,
            sex=patient.sex,
            birth_date=patient.birth_date,
            deceased_date=patient.deceased_date,
        ),
        causes=tuple(doc.causes),
        symptoms=tuple(
            SymptomReport(
                date=s.date, code=s.code, status=s.status, reporter=s.reporter or "clinician"
            )
            for s in doc.symptoms
        ),
        observations=tuple(
            Observation(
                date=o.date,
                code=o.analyte(known),
                value=o.value,
                unit=o.unit,
                reference_low=o.reference_low,
                reference_high=o.reference_high,
                loinc=o.loinc,
            )
            for o in doc.observations
        ),
        administrations=tuple(
            Administration(
                date=a.date,
                product=a.product,
                dose=a.dose,
                unit=a.unit,
                route=a.route,
                brand=a.brand,
                given_by=a.given_by,
                site=a.site,
            )
            for a in doc.administrations
        ),
        prescription=None
        if rx is None
        else Prescription(
            product=rx.product,
            dose=rx.dose,
            unit=rx.unit,
            route=rx.route,
            phase=rx.phase,
            interval_days=rx.interval_days,
            start=rx.start,
            end=rx.end,
            brand=rx.brand,
            given_by=rx.given_by,
            site=rx.site,
        ),
        medications=tuple(
            Medication(start=m.start, code=m.code, end=m.end) for m in doc.medications
        ),
        adverse_events=tuple(AdverseEvent(date=e.date, code=e.code) for e in doc.adverse_events),
        decisions=tuple(
            # ``by`` is required in a case (``DecisionIn`` checks it when validating one)
            Decision(date=d.date, code=d.code, by=cast(str, d.by), reason=d.reason)
            for d in doc.decisions
        ),
        prior_treatment=None
        if doc.prior_treatment is None
        else PriorTreatment(
            since=doc.prior_treatment.since,
            loading_completed=doc.prior_treatment.loading_completed,
        ),
    )


# --- errors -----------------------------------------------------------------------------------


# --- writing ----------------------------------------------------------------------------------


def case_to_dict(case: Case) -> dict[str, Any]:
    """A core ``Case`` as contract v1 JSON (absent values left out; ``1.0`` written as ``1``)."""
    out: dict[str, Any] = {
        "schema_version": case.schema_version,
        "as_of": case.as_of.isoformat(),
        "jurisdiction": case.jurisdiction,
    }
    patient = _compact(
        {
            "id": case.patient.id,
            "sex": case.patient.sex,
            "birth_date": _iso(case.patient.birth_date),
            "deceased_date": _iso(case.patient.deceased_date),
        }
    )
    if patient:
        out["patient"] = patient
    out["causes"] = list(case.causes)
    out["symptoms"] = [
        {"code": s.code, "date": s.date.isoformat(), "status": s.status, "reporter": s.reporter}
        for s in case.symptoms
    ]
    out["observations"] = [
        _compact(
            {
                "code": o.code,
                "loinc": o.loinc,
                "date": o.date.isoformat(),
                "value": json_number(o.value),
                "unit": o.unit,
                "reference_low": json_number(o.reference_low),
                "reference_high": json_number(o.reference_high),
            }
        )
        for o in case.observations
    ]
    out["administrations"] = [
        _compact(
            {
                "date": a.date.isoformat(),
                "product": a.product,
                "brand": a.brand,
                "dose": json_number(a.dose),
                "unit": a.unit,
                "route": a.route,
                "given_by": a.given_by,
                "site": a.site,
            }
        )
        for a in case.administrations
    ]
    rx = case.prescription
    if rx is not None:
        out["prescription"] = _compact(
            {
                "product": rx.product,
                "brand": rx.brand,
                "dose": json_number(rx.dose),
                "unit": rx.unit,
                "route": rx.route,
                "phase": rx.phase,
                "interval_days": rx.interval_days,
                "start": rx.start.isoformat(),
                "end": _iso(rx.end),
                "given_by": rx.given_by,
                "site": rx.site,
            }
        )
    out["medications"] = [
        _compact({"code": m.code, "start": m.start.isoformat(), "end": _iso(m.end)})
        for m in case.medications
    ]
    out["adverse_events"] = [
        {"code": e.code, "date": e.date.isoformat()} for e in case.adverse_events
    ]
    out["decisions"] = [
        {"code": d.code, "date": d.date.isoformat(), "by": d.by, "reason": d.reason}
        for d in case.decisions
    ]
    if case.prior_treatment is not None:
        out["prior_treatment"] = {
            "since": case.prior_treatment.since.isoformat(),
            "loading_completed": case.prior_treatment.loading_completed,
        }
    return out


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()
