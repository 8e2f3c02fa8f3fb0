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
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from b12plan.contract.errors import FieldError, field_error, format_loc
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


# --- vocabulary from the knowledge base -------------------------------------------------------


@dataclass(frozen=True)
class _Vocabulary:
    """The codes and units a case may use, read once from one knowledge base."""

    jurisdictions: tuple[str, ...]
    causes: tuple[str, ...]
    symptoms: tuple[str, ...]
    statuses: tuple[str, ...]
    medications: tuple[str, ...]
    adverse_events: tuple[str, ...]
    products: tuple[str, ...]
    routes: tuple[str, ...]
    dose_units: tuple[str, ...]
    analyte_units: dict[str, tuple[str, ...]]
    loinc: dict[str, str]

    @classmethod
    def of(cls, knowledge: Knowledge) -> _Vocabulary:
        products = knowledge.formulary.products
        routes: list[str] = []
        for product in products:
            for route in [r.route for r in product.routes] + [
                n.route for n in product.not_for_deficiency
            ]:
                if route not in routes:
                    routes.append(route)
        return cls(
            jurisdictions=_unique(p.jurisdiction for p in knowledge.protocols),
            causes=tuple(c.code for c in knowledge.causes),
            symptoms=tuple(s.code for s in knowledge.symptoms),
            statuses=tuple(knowledge.symptom_statuses),
            medications=tuple(m.code for m in knowledge.medications),
            adverse_events=tuple(a.code for a in knowledge.adverse_events),
            products=tuple(p.id for p in products),
            routes=tuple(routes),
            dose_units=tuple(u.symbol for u in knowledge.formulary.dose_units),
            analyte_units={a.code: tuple(u.symbol for u in a.units) for a in knowledge.analytes},
            loinc={code: a.code for a in knowledge.analytes for code in a.loinc},
        )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


_VOCABULARIES: dict[int, tuple[Knowledge, _Vocabulary]] = {}


def _vocabulary(knowledge: Knowledge) -> _Vocabulary:
    """Cached by identity: the shipped knowledge base is one long-lived object."""
    hit = _VOCABULARIES.get(id(knowledge))
    if hit is not None and hit[0] is knowledge:
        return hit[1]
    if len(_VOCABULARIES) >= 16:
        _VOCABULARIES.clear()
    vocabulary = _Vocabulary.of(knowledge)
    _VOCABULARIES[id(knowledge)] = (knowledge, vocabulary)
    return vocabulary


def _context_vocabulary(info: ValidationInfo) -> _Vocabulary:
    context = info.context
    if not isinstance(context, dict) or not isinstance(context.get("vocabulary"), _Vocabulary):
        raise RuntimeError("case models are validated through parse_case, with a knowledge base")
    vocabulary: _Vocabulary = context["vocabulary"]
    return vocabulary


def _listing(values: Iterable[str]) -> str:
    return ", ".join(values)


def _in_vocabulary(kind: str, what: str) -> Callable[[str, ValidationInfo], str]:
    """A validator accepting only the codes listed under ``kind`` in the knowledge base."""

    def check(value: str, info: ValidationInfo) -> str:
        allowed: tuple[str, ...] = getattr(_context_vocabulary(info), kind)
        if value not in allowed:
            raise PydanticCustomError(
                f"unknown_{kind}",
                "unknown {what} {value} (accepted: {allowed})",
                {"what": what, "value": repr(value), "allowed": _listing(allowed)},
            )
        return value

    return check


# --- field types ----------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_iso_date(value: str) -> dt.date:
    """``YYYY-MM-DD`` only: the contract's one date format (no week dates, no times)."""
    if not _ISO_DATE.fullmatch(value):
        raise ValueError(f"expected a date as 'YYYY-MM-DD', got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a calendar date: {value!r}") from None


def _to_date(value: object) -> dt.date:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "date_type", "expected a date as text 'YYYY-MM-DD', got {got}", {"got": _kind(value)}
        )
    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise PydanticCustomError("date_format", "{reason}", {"reason": str(exc)}) from None


IsoDate = Annotated[dt.date, BeforeValidator(_to_date)]
Text = Annotated[str, Strict(), Field(min_length=1, max_length=500)]
PositiveNumber = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegativeNumber = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
CauseCode = Annotated[str, Strict(), AfterValidator(_in_vocabulary("causes", "cause"))]
SymptomCode = Annotated[str, Strict(), AfterValidator(_in_vocabulary("symptoms", "symptom"))]
SymptomStatus = Annotated[
    str, Strict(), AfterValidator(_in_vocabulary("statuses", "symptom status"))
]
MedicationCode = Annotated[
    str, Strict(), AfterValidator(_in_vocabulary("medications", "medication"))
]
AdverseEventCode = Annotated[
    str, Strict(), AfterValidator(_in_vocabulary("adverse_events", "adverse event"))
]
ProductCode = Annotated[str, Strict(), AfterValidator(_in_vocabulary("products", "product"))]
RouteCode = Annotated[str, Strict(), AfterValidator(_in_vocabulary("routes", "route"))]
DoseUnit = Annotated[str, Strict(), AfterValidator(_in_vocabulary("dose_units", "dose unit"))]
Jurisdiction = Annotated[
    str, Strict(), AfterValidator(_in_vocabulary("jurisdictions", "jurisdiction"))
]


def _field_error(field: str, type_: str, message: str) -> PydanticCustomError:
    """An error raised by a whole-record check but belonging to one of the record's fields."""
    return PydanticCustomError(type_, "{message}", {"message": message, "field": field})


# --- the document's shape ---------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class PatientIn(_Model):
    id: Text | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    birth_date: IsoDate | None = None
    deceased_date: IsoDate | None = None


class SymptomIn(_Model):
    code: SymptomCode
    date: IsoDate
    status: SymptomStatus
    reporter: Literal["clinician", "patient", "carer"] | None = None


class DecisionIn(_Model):
    """A clinician's recorded decision (contract v1.1): a reason is required."""

    code: Literal["neuro_loading_complete", "rechallenge_cleared"]
    date: IsoDate
    by: Text
    reason: Text


class PriorTreatmentIn(_Model):
    since: IsoDate
    loading_completed: Annotated[bool, Strict()]


class ObservationIn(_Model):
    code: Annotated[str, Strict()] | None = None
    loinc: Annotated[str, Strict()] | None = None
    date: IsoDate
    value: NonNegativeNumber
    unit: Annotated[str, Strict()]
    reference_low: NonNegativeNumber | None = None
    reference_high: NonNegativeNumber | None = None

    @model_validator(mode="after")
    def _analyte_and_unit(self, info: ValidationInfo) -> ObservationIn:
        """The analyte comes from ``code`` or ``loinc``; the unit must be one it accepts."""
        vocabulary = _context_vocabulary(info)
        code = self.code
        if code is not None and code not in vocabulary.analyte_units:
            raise _field_error(
                "code",
                "unknown_observation",
                f"unknown observation code {code!r} "
                f"(accepted: {_listing(vocabulary.analyte_units)})",
            )
        if self.loinc is not None:
            by_loinc = vocabulary.loinc.get(self.loinc)
            if by_loinc is None:
                raise _field_error(
                    "loinc",
                    "unknown_loinc",
                    f"unknown LOINC code {self.loinc!r} (known: {_listing(vocabulary.loinc)})",
                )
            if code is not None and code != by_loinc:
                raise _field_error(
                    "loinc",
                    "code_mismatch",
                    f"LOINC {self.loinc} is {by_loinc}, but code says {code!r}",
                )
            code = by_loinc
        if code is None:
            raise _field_error("code", "missing", "an observation needs 'code' or 'loinc'")
        units = vocabulary.analyte_units[code]
        if self.unit not in units:
            raise _field_error(
                "unit",
                "unknown_unit",
                f"unknown unit {self.unit!r} for {code} (accepted: {_listing(units)})",
            )
        low, high = self.reference_low, self.reference_high
        if low is not None and high is not None and not low < high:
            raise _field_error(
                "reference_high",
                "reference_range",
                f"reference_high ({_num(high)}) must be above reference_low ({_num(low)})",
            )
        return self

    def analyte(self, vocabulary: _Vocabulary) -> str:
        """The canonical code (validated: present directly or through the LOINC map)."""
        if self.code is not None:
            return self.code
        assert self.loinc is not None  # guaranteed by _analyte_and_unit
        return vocabulary.loinc[self.loinc]


class AdministrationIn(_Model):
    date: IsoDate
    product: ProductCode
    brand: Text | None = None
    dose: PositiveNumber
    unit: DoseUnit
    route: RouteCode
    given_by: Literal["clinic", "self", "carer"] | None = None
    site: Text | None = None


class PrescriptionIn(_Model):
    """The current order: an administration's fields ("as an administration") plus the phase,
    interval and dates."""

    product: ProductCode
    brand: Text | None = None
    dose: PositiveNumber
    unit: DoseUnit
    route: RouteCode
    given_by: Literal["clinic", "self", "carer"] | None = None
    site: Text | None = None
    phase: Literal["loading", "maintenance"]
    interval_days: PositiveInt
    start: IsoDate
    end: IsoDate | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> PrescriptionIn:
        if self.end is not None and self.end < self.start:
            raise _field_error("end", "end_before_start", _end_message(self.end, self.start))
        return self


class MedicationIn(_Model):
    code: MedicationCode
    start: IsoDate
    end: IsoDate | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> MedicationIn:
        if self.end is not None and self.end < self.start:
            raise _field_error("end", "end_before_start", _end_message(self.end, self.start))
        return self


class AdverseEventIn(_Model):
    code: AdverseEventCode
    date: IsoDate


class CaseIn(_Model):
    schema_version: Annotated[int, Strict()]
    as_of: IsoDate
    jurisdiction: Jurisdiction | None = None
    patient: PatientIn | None = None
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
            raise _field_error(
                "schema_version",
                "schema_version",
                f"unsupported schema_version {self.schema_version}: "
                f"this b12plan reads version {SCHEMA_VERSION}",
            )
        return self


def _end_message(end: dt.date, start: dt.date) -> str:
    return f"end {end.isoformat()} is before start {start.isoformat()}"


# --- parsing ----------------------------------------------------------------------------------


def parse_case(data: object, knowledge: Knowledge) -> Case:
    """A contract v1 case document (parsed JSON) as a core ``Case``; ``CaseError`` otherwise."""
    vocabulary = _vocabulary(knowledge)
    try:
        doc = CaseIn.model_validate(data, context={"vocabulary": vocabulary})
    except ValidationError as exc:
        raise CaseError(_from_pydantic(exc)) from None
    problems = _date_problems(doc)
    if problems:
        raise CaseError(problems)
    return _to_core(doc, vocabulary)


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


def _to_core(doc: CaseIn, vocabulary: _Vocabulary) -> Case:
    patient = doc.patient or PatientIn()
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
                code=o.analyte(vocabulary),
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
            Decision(date=d.date, code=d.code, by=d.by, reason=d.reason) for d in doc.decisions
        ),
        prior_treatment=None
        if doc.prior_treatment is None
        else PriorTreatment(
            since=doc.prior_treatment.since,
            loading_completed=doc.prior_treatment.loading_completed,
        ),
    )


# --- errors -----------------------------------------------------------------------------------


def _from_pydantic(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors in the contract's shape: a field path and a plain-language message."""
    out: list[FieldError] = []
    for error in exc.errors(include_url=False):
        loc: list[str | int] = list(error["loc"])
        ctx: dict[str, Any] = dict(error.get("ctx") or {})
        if "field" in ctx:
            loc.append(ctx.pop("field"))
        out.append(
            field_error(
                format_loc(loc),
                _message(error["type"], error["msg"], error.get("input"), ctx, loc),
                error["type"],
            )
        )
    return out


def _message(
    type_: str, default: str, value: object, ctx: dict[str, Any], loc: Sequence[str | int]
) -> str:
    if type_ == "missing":
        return "required"
    if type_ == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return "unknown key" + (f" (allowed: {_listing(allowed)})" if allowed else "")
    if type_ in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected an object, got {_kind(value)}"
    if type_ == "list_type":
        return f"expected a list, got {_kind(value)}"
    if type_ == "string_type":
        return f"expected text, got {_kind(value)}"
    if type_ == "float_type":
        return f"expected a number, got {_kind(value)}"
    if type_ == "int_type":
        return f"expected a whole number, got {_kind(value)}"
    if type_ == "greater_than":
        return f"must be greater than {_num(ctx['gt'])}, got {_kind(value)}"
    if type_ == "greater_than_equal":
        return f"must not be negative, got {_kind(value)}"
    if type_ == "finite_number":
        return "must be a finite number"
    if type_ == "literal_error":
        return f"expected one of {ctx.get('expected', '')}, got {_kind(value)}"
    if type_ == "string_too_short":
        return "must not be empty"
    if type_ == "string_too_long":
        return f"too long (at most {ctx.get('max_length')} characters)"
    if default.startswith("Input should"):
        return "i" + default[1:]
    return default


def _allowed_keys(loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys the object at ``loc`` may have, found by walking the models along the path."""
    model: Any = CaseIn
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ()
        model = _model_in(field.annotation)
        if model is None:
            return ()
    return tuple(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``Model``, ``Model | None`` or ``list[Model]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _kind(value: object) -> str:
    """How a JSON value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _clip(str(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f"text {_clip(value)!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _num(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


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
                "value": _json_number(o.value),
                "unit": o.unit,
                "reference_low": _json_number(o.reference_low),
                "reference_high": _json_number(o.reference_high),
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
                "dose": _json_number(a.dose),
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
                "dose": _json_number(rx.dose),
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


def _json_number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value
