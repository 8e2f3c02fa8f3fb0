"""Each clinical record kind's fields, declared once (ADR 0066).

The case document (``b12plan.contract.case``), the REST and web inputs and the store
(``b12plan.service.schemas``, which extend these classes with only what the store adds: a note,
a batch number, column mapping) all use these models, so a field is added, limited or described
in one place.

Two levels of checking, by whether a knowledge base is in the validation context:

- **Shape, always**: each field's type and limits. Strict (a dose of ``"1"`` or ``true`` is
  refused, not coerced), no NUL characters and bounded text (neither is ever clinically
  meaningful, and both would break a database), ``YYYY-MM-DD`` dates (or ``date`` objects from
  Python callers).
- **Meaning, with a knowledge base** (``parse_case`` passes it): codes, units, products and routes
  from the knowledge base, and the checks across fields (an analyte's unit, an end before its
  start, a decision's author). Without one (FastAPI body parsing, web forms, rows read back from
  the store) these are deferred, never skipped: every write is run through ``parse_case`` with
  the patient's whole record before it commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from b12plan.core.knowledge import Knowledge

# --- vocabulary from the knowledge base -------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
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
    def of(cls, knowledge: Knowledge) -> Vocabulary:
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


_VOCABULARIES: dict[int, tuple[Knowledge, Vocabulary]] = {}


def vocabulary(knowledge: Knowledge) -> Vocabulary:
    """Cached by identity: the shipped knowledge base is one long-lived object."""
    hit = _VOCABULARIES.get(id(knowledge))
    if hit is not None and hit[0] is knowledge:
        return hit[1]
    if len(_VOCABULARIES) >= 16:
        _VOCABULARIES.clear()
    found = Vocabulary.of(knowledge)
    _VOCABULARIES[id(knowledge)] = (knowledge, found)
    return found


def validation_context(knowledge: Knowledge) -> dict[str, Any]:
    """The context that turns on the checks of meaning (``model_validate(..., context=...)``)."""
    return {"vocabulary": vocabulary(knowledge)}


def context_vocabulary(info: ValidationInfo) -> Vocabulary | None:
    """The knowledge base's vocabulary, or None when validating shape only (no context)."""
    context = info.context
    if context is None:
        return None
    found = context.get("vocabulary") if isinstance(context, dict) else None
    if not isinstance(found, Vocabulary):
        raise RuntimeError("record models take validation_context(knowledge) or no context")
    return found


def listing(values: Iterable[str]) -> str:
    return ", ".join(values)


def _in_vocabulary(kind: str, what: str) -> Callable[[str, ValidationInfo], str]:
    """A validator accepting only the codes listed under ``kind`` in the knowledge base."""

    def check(value: str, info: ValidationInfo) -> str:
        known = context_vocabulary(info)
        if known is None:
            return value
        allowed: tuple[str, ...] = getattr(known, kind)
        if value not in allowed:
            raise PydanticCustomError(
                f"unknown_{kind}",
                "unknown {what} {value} (accepted: {allowed})",
                {"what": what, "value": repr(value), "allowed": listing(allowed)},
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
    """``YYYY-MM-DD`` text (JSON) or a ``date`` (Python callers); nothing else, not a datetime."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "date_type", "expected a date as text 'YYYY-MM-DD', got {got}", {"got": kind(value)}
        )
    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise PydanticCustomError("date_format", "{reason}", {"reason": str(exc)}) from None


def no_nul(value: str) -> str:
    """NUL cannot be stored in PostgreSQL text, and is never meaningful in a record."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    return value


def _not_blank(value: str) -> str:
    """A required explanation must say something."""
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


INT32_MAX = 2**31 - 1
"""Whole numbers are stored as database INTEGERs."""

IsoDate = Annotated[dt.date, BeforeValidator(_to_date)]
Text = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=500), AfterValidator(no_nul)
]
Code = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=60), AfterValidator(no_nul)
]
PositiveNumber = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegativeNumber = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Strict(), Field(gt=0, le=INT32_MAX)]
CauseCode = Annotated[Code, AfterValidator(_in_vocabulary("causes", "cause"))]
SymptomCode = Annotated[Code, AfterValidator(_in_vocabulary("symptoms", "symptom"))]
SymptomStatus = Annotated[Code, AfterValidator(_in_vocabulary("statuses", "symptom status"))]
MedicationCode = Annotated[Code, AfterValidator(_in_vocabulary("medications", "medication"))]
AdverseEventCode = Annotated[
    Code, AfterValidator(_in_vocabulary("adverse_events", "adverse event"))
]
ProductCode = Annotated[Code, AfterValidator(_in_vocabulary("products", "product"))]
RouteCode = Annotated[Code, AfterValidator(_in_vocabulary("routes", "route"))]
DoseUnit = Annotated[Code, AfterValidator(_in_vocabulary("dose_units", "dose unit"))]
Jurisdiction = Annotated[Code, AfterValidator(_in_vocabulary("jurisdictions", "jurisdiction"))]
Sex = Literal["female", "male", "other", "unknown"]
GivenBy = Literal["clinic", "self", "carer"]
Reporter = Literal["clinician", "patient", "carer"]


def field_problem(field: str, type_: str, message: str) -> PydanticCustomError:
    """An error raised by a whole-record check but belonging to one of the record's fields
    (``ctx["field"]`` extends the error's path)."""
    return PydanticCustomError(type_, "{message}", {"message": message, "field": field})


# --- the records ------------------------------------------------------------------------------


RECORD_CONFIG = ConfigDict(extra="forbid", frozen=True, defer_build=True)
"""Closed (an unknown key is refused, never dropped) and immutable."""


class Record(BaseModel):
    """Base of the contract's records."""

    model_config = RECORD_CONFIG

    @classmethod
    def contract_model(cls) -> type[Record]:
        """The contract record this class is or extends (a store input extends one)."""
        return next(c for c in cls.__mro__ if c.__module__ == __name__ and issubclass(c, Record))

    def case_entry(self) -> Any:
        """This record as it appears in the case document: the contract's fields only, absent
        values left out, dates as text and ``1.0`` written ``1``."""
        values = self.model_dump(
            mode="json", include=set(self.contract_model().model_fields), exclude_none=True
        )
        return {name: json_number(value) for name, value in values.items()}


class PatientDemographics(Record):
    """What the case says about the patient besides the id (the store keeps these as
    demographics, with a display name)."""

    sex: Sex | None = None
    birth_date: IsoDate | None = None
    deceased_date: IsoDate | None = None


class CasePatient(PatientDemographics):
    """The case's ``patient``: an id and the demographics."""

    id: Text | None = None


class SymptomIn(Record):
    code: SymptomCode
    date: IsoDate
    status: SymptomStatus
    reporter: Reporter | None = Field(
        default=None,
        description=(
            "Who assessed the symptom (absent: clinician). Only a clinician's assessment may end"
            " neurological loading, so what a patient or carer enters is stored as patient (or"
            " carer) whatever the request says."
        ),
    )


class DecisionIn(Record):
    """A clinician's recorded decision (contract v1.1): what, when, by whom and why.

    ``by`` is required in a case; a store input may leave it out (the signed-in clinician).
    ``reason`` is required (a decision that ends neurological loading or clears injections
    after a reaction must say why).
    """

    code: Literal["neuro_loading_complete", "rechallenge_cleared"]
    date: IsoDate
    by: Text | None = Field(default=None, description="Who decided (default: you).")
    reason: Annotated[Text, AfterValidator(_not_blank)]

    @model_validator(mode="after")
    def _author_named(self, info: ValidationInfo) -> Self:
        if self.by is None and context_vocabulary(info) is not None:
            raise field_problem("by", "missing", "required")
        return self


class PriorTreatmentIn(Record):
    """Treatment before the first dose recorded here (transferred in, or records kept
    elsewhere)."""

    since: IsoDate
    loading_completed: Annotated[bool, Strict()]


class ObservationIn(Record):
    """A laboratory result: ``code`` or ``loinc`` (or both, if they agree)."""

    code: Code | None = None
    loinc: Code | None = None
    date: IsoDate
    value: NonNegativeNumber
    unit: Code
    reference_low: NonNegativeNumber | None = None
    reference_high: NonNegativeNumber | None = None

    @model_validator(mode="after")
    def _analyte_and_unit(self, info: ValidationInfo) -> Self:
        """The analyte comes from ``code`` or ``loinc``; the unit must be one it accepts."""
        known = context_vocabulary(info)
        if known is None:
            return self
        code = self.code
        if code is not None and code not in known.analyte_units:
            raise field_problem(
                "code",
                "unknown_observation",
                f"unknown observation code {code!r} (accepted: {listing(known.analyte_units)})",
            )
        if self.loinc is not None:
            by_loinc = known.loinc.get(self.loinc)
            if by_loinc is None:
                raise field_problem(
                    "loinc",
                    "unknown_loinc",
                    f"unknown LOINC code {self.loinc!r} (known: {listing(known.loinc)})",
                )
            if code is not None and code != by_loinc:
                raise field_problem(
                    "loinc",
                    "code_mismatch",
                    f"LOINC {self.loinc} is {by_loinc}, but code says {code!r}",
                )
            code = by_loinc
        if code is None:
            raise field_problem("code", "missing", "an observation needs 'code' or 'loinc'")
        units = known.analyte_units[code]
        if self.unit not in units:
            raise field_problem(
                "unit",
                "unknown_unit",
                f"unknown unit {self.unit!r} for {code} (accepted: {listing(units)})",
            )
        low, high = self.reference_low, self.reference_high
        if low is not None and high is not None and not low < high:
            raise field_problem(
                "reference_high",
                "reference_range",
                f"reference_high ({num(high)}) must be above reference_low ({num(low)})",
            )
        return self

    def analyte(self, known: Vocabulary) -> str:
        """The canonical code (validated: present directly or through the LOINC map)."""
        if self.code is not None:
            return self.code
        assert self.loinc is not None  # guaranteed by _analyte_and_unit
        return known.loinc[self.loinc]


class _Dose(Record):
    """What is given, and how: shared by an administration and an order ("as an
    administration")."""

    product: ProductCode
    brand: Text | None = None
    dose: PositiveNumber
    unit: DoseUnit
    route: RouteCode
    given_by: GivenBy | None = None
    site: Text | None = None


class AdministrationIn(_Dose):
    date: IsoDate


class _Course(Record):
    """A record that runs from ``start`` to an optional ``end``, which may not come first."""

    start: IsoDate
    end: IsoDate | None = None

    @model_validator(mode="after")
    def _end_after_start(self, info: ValidationInfo) -> Self:
        if context_vocabulary(info) is None:
            return self
        if self.end is not None and self.end < self.start:
            raise field_problem(
                "end",
                "end_before_start",
                f"end {self.end.isoformat()} is before start {self.start.isoformat()}",
            )
        return self


class PrescriptionIn(_Course, _Dose):
    """An order: an administration's fields plus the phase and interval, from ``start`` to an
    optional ``end``."""

    phase: Literal["loading", "maintenance"]
    interval_days: PositiveInt


class MedicationIn(_Course):
    code: MedicationCode


class AdverseEventIn(Record):
    code: AdverseEventCode
    date: IsoDate


# --- how values read in messages and documents ------------------------------------------------

T = TypeVar("T")


def kind(value: object) -> str:
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


def num(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def json_number(value: T) -> T | int:
    """A whole float as an int (``1.0`` is written ``1``, as people write doses)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
