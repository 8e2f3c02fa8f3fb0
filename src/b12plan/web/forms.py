"""The web forms: their fields (choices from the knowledge base) and form text → service input.

Browsers send text. This module turns it into the typed values the service layer's inputs
(``b12plan.service.schemas``) accept, and every problem — a number that is not a number, a
service ``InvalidInput`` from the case contract checks — comes back keyed by the form field,
so the page can show it next to that field. Validation itself stays where it lives
(``service.schemas`` for shape, ``b12plan.contract`` via the service for vocabulary and dates).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from b12plan.core.knowledge import Knowledge
from b12plan.service.errors import FieldError, field_errors
from b12plan.service.schemas import (
    AdministrationIn,
    AdverseEventIn,
    DecisionIn,
    IsoDate,
    ObservationIn,
    PrescriptionIn,
    PriorTreatmentIn,
    SymptomIn,
)

Choice = tuple[str, str]  # (value, label)


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | number | int | date | select | textarea | yesno (a select: yes / no)
    required: bool = False
    choices: tuple[Choice, ...] = ()
    hint: str = ""
    step: str = "any"
    width: str = ""  # "short" for numbers and units
    attrs: tuple[tuple[str, str], ...] = ()  # extra attributes (htmx) for the input


@dataclass
class Form:
    """One form on a page: its fields, what the user typed, and what is wrong with it."""

    id: str
    title: str
    action: str
    submit: str
    fields: tuple[Field, ...]
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.general)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def error_items(self) -> list[tuple[str, str, str]]:
        """(field id, label, message) for the error summary, in field order."""
        out = [
            (f"{self.id}-{f.name}", f.label, self.errors[f.name])
            for f in self.fields
            if f.name in self.errors
        ]
        return out


# --- choices from the knowledge base -------------------------------------------------------------


def product_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    return tuple((p.id, p.id) for p in knowledge.formulary.products)


def dose_unit_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    return tuple((u.symbol, u.symbol) for u in knowledge.formulary.dose_units)


def route_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    routes: list[str] = []
    for product in knowledge.formulary.products:
        for r in [x.route for x in product.routes] + [n.route for n in product.not_for_deficiency]:
            if r not in routes:
                routes.append(r)
    return tuple((r, r) for r in routes)


def analyte_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    return tuple((a.code, a.name) for a in knowledge.analytes)


def unit_choices(knowledge: Knowledge, analyte: str) -> tuple[Choice, ...]:
    """The units one analyte accepts (the lab form's unit list follows the chosen analyte)."""
    for a in knowledge.analytes:
        if a.code == analyte:
            return tuple((u.symbol, u.symbol) for u in a.units)
    return ()


def symptom_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    return tuple((s.code, s.label) for s in knowledge.symptoms)


def status_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    return tuple((s, s) for s in knowledge.symptom_statuses)


def adverse_event_choices(knowledge: Knowledge) -> tuple[Choice, ...]:
    return tuple((e.code, e.label) for e in knowledge.adverse_events)


GIVEN_BY_CLINIC: tuple[Choice, ...] = (("clinic", "clinic"), ("self", "self"), ("carer", "carer"))
GIVEN_BY_PATIENT: tuple[Choice, ...] = (("self", "I gave it myself"), ("carer", "A carer gave it"))
PHASES: tuple[Choice, ...] = (("loading", "loading"), ("maintenance", "maintenance"))


# --- the forms -----------------------------------------------------------------------------------


def dose_fields(knowledge: Knowledge, *, unit_hint: str = "") -> tuple[Field, Field]:
    """A dose and its unit, side by side: every order and injection form asks for the pair."""
    return (
        Field("dose", "Dose", "number", required=True, width="short"),
        Field(
            "unit",
            "Unit",
            "select",
            required=True,
            choices=dose_unit_choices(knowledge),
            width="short",
            hint=unit_hint,
        ),
    )


def injection_fields(knowledge: Knowledge, sites: Sequence[str] = ()) -> tuple[Field, ...]:
    return (
        Field("date", "Date given", "date", required=True),
        Field("product", "Product", "select", required=True, choices=product_choices(knowledge)),
        *dose_fields(knowledge),
        Field("route", "Route", "select", required=True, choices=route_choices(knowledge)),
        Field(
            "site",
            "Injection site",
            "select" if sites else "text",
            choices=tuple((s, s) for s in sites),
        ),
        Field("given_by", "Given by", "select", choices=GIVEN_BY_CLINIC),
        Field("brand", "Brand", "text"),
        Field("lot", "Batch (lot) number", "text"),
        Field("note", "Note", "textarea"),
    )


def self_injection_fields(knowledge: Knowledge, sites: Sequence[str]) -> tuple[Field, ...]:
    return (
        Field("date", "Date of the injection", "date", required=True),
        Field(
            "product",
            "Medicine",
            "select",
            required=True,
            choices=product_choices(knowledge),
            hint="As written on the box.",
        ),
        *dose_fields(knowledge, unit_hint="mg and mcg differ a thousand-fold: check the box."),
        Field(
            "route",
            "How it was given",
            "select",
            required=True,
            choices=route_choices(knowledge),
            hint="IM = into the muscle, SC = under the skin.",
        ),
        Field("site", "Where on the body", "select", choices=tuple((s, s) for s in sites)),
        Field("given_by", "Who gave it", "select", choices=GIVEN_BY_PATIENT),
        Field("note", "Anything else", "textarea"),
    )


def lab_fields(knowledge: Knowledge, analyte: str) -> tuple[Field, ...]:
    return (
        Field("date", "Sample date", "date", required=True),
        Field("code", "Test", "select", required=True, choices=analyte_choices(knowledge)),
        Field("value", "Result", "number", required=True, width="short"),
        Field(
            "unit",
            "Unit",
            "select",
            required=True,
            choices=unit_choices(knowledge, analyte),
            width="short",
            hint="The unit printed on the lab report.",
        ),
        Field("reference_low", "Lab's lower limit", "number", width="short"),
        Field("reference_high", "Lab's upper limit", "number", width="short"),
        Field("note", "Note", "textarea"),
    )


def symptom_fields(knowledge: Knowledge) -> tuple[Field, ...]:
    return (
        Field("date", "Date assessed", "date", required=True),
        Field("code", "Symptom", "select", required=True, choices=symptom_choices(knowledge)),
        Field(
            "status",
            "Status",
            "select",
            required=True,
            choices=status_choices(knowledge),
            hint="stable = no further improvement",
        ),
        Field("note", "Note", "textarea"),
    )


def adverse_event_fields(knowledge: Knowledge, *, patient: bool = False) -> tuple[Field, ...]:
    return (
        Field("date", "When did it start?" if patient else "Date", "date", required=True),
        Field(
            "code",
            "What happened?" if patient else "Side effect",
            "select",
            required=True,
            choices=adverse_event_choices(knowledge),
        ),
        Field("note", "Describe it" if patient else "Note", "textarea"),
    )


def prescription_fields(knowledge: Knowledge) -> tuple[Field, ...]:
    return (
        Field("product", "Product", "select", required=True, choices=product_choices(knowledge)),
        Field("brand", "Brand", "text"),
        *dose_fields(knowledge),
        Field("route", "Route", "select", required=True, choices=route_choices(knowledge)),
        Field("phase", "Phase", "select", required=True, choices=PHASES),
        Field("interval_days", "Interval (days)", "int", required=True, step="1", width="short"),
        Field("start", "Start", "date", required=True),
        Field("end", "End", "date"),
        Field("note", "Reason for the change", "textarea"),
    )


def decision_fields(knowledge: Knowledge) -> tuple[Field, ...]:
    return (
        Field(
            "code",
            "Decision",
            "select",
            required=True,
            choices=tuple((d.code, d.label) for d in knowledge.decisions),
        ),
        Field("date", "Date decided", "date", required=True),
        Field("by", "Decided by", "text", hint="Leave blank if it was you."),
        Field(
            "reason",
            "Reason",
            "textarea",
            required=True,
            hint="Required: what you saw, e.g. no further improvement at the last two reviews.",
        ),
    )


YES_NO: tuple[Choice, ...] = (("yes", "yes"), ("no", "no"))


def prior_treatment_fields() -> tuple[Field, ...]:
    return (
        Field("since", "Treated since", "date", required=True),
        Field(
            "loading_completed",
            "Loading course completed before?",
            "yesno",
            required=True,
            choices=YES_NO,
        ),
        Field("note", "Where, and what was given", "textarea"),
    )


# --- form text to service input ------------------------------------------------------------------


def typed_values(
    fields: Iterable[Field], form: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Form text to typed values; blank optional fields are left out; errors by field name."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        raw = form.get(f.name, "").strip()
        if raw == "":
            if f.required:
                errors[f.name] = f"Enter the {f.label.lower()}."
            continue
        if f.kind == "number":
            try:
                number = float(raw.replace(",", "."))
            except ValueError:
                errors[f.name] = f"{f.label}: enter a number, like 1 or 0.5."
                continue
            if not math.isfinite(number):
                errors[f.name] = f"{f.label}: enter a number, like 1 or 0.5."
                continue
            values[f.name] = number
        elif f.kind == "yesno":
            if raw not in ("yes", "no"):
                errors[f.name] = f"{f.label}: choose yes or no."
                continue
            values[f.name] = raw == "yes"
        elif f.kind == "int":
            if not raw.isdigit():
                errors[f.name] = f"{f.label}: enter a whole number of days."
                continue
            values[f.name] = int(raw)
        elif f.choices and raw not in {value for value, _ in f.choices}:
            allowed = [value for value, _ in f.choices]
            listed = f": {', '.join(allowed)}" if len(allowed) <= 8 else " of the options"
            errors[f.name] = f"{f.label}: {raw!r} is not offered here; choose one{listed}."
        else:
            values[f.name] = raw
    return values, errors


def errors_by_field(
    problems: Iterable[FieldError], fields: Iterable[Field]
) -> tuple[dict[str, str], list[str]]:
    """Service field errors placed on form fields; the rest (other records, the document) kept
    as general messages for the top of the form."""
    names = {f.name for f in fields}
    labels = {f.name: f.label for f in fields}
    placed: dict[str, str] = {}
    general: list[str] = []
    for p in problems:
        loc = p["loc"]
        if loc in names:
            message = p["msg"]
            placed.setdefault(loc, f"{labels[loc]}: {message[:1].upper()}{message[1:]}")
        else:
            general.append(f"{loc}: {p['msg']}" if loc else p["msg"])
    return placed, general


M = TypeVar("M", bound=BaseModel)


def build_input(model: type[M], values: Mapping[str, Any]) -> tuple[M | None, list[FieldError]]:
    """The service input, or the shape errors pydantic found (as field errors)."""
    try:
        return model.model_validate(dict(values)), []
    except ValidationError as exc:
        return None, field_errors(exc.errors(include_url=False), model)


_ISO_DATE: TypeAdapter[date] = TypeAdapter(IsoDate)


def form_date(text: str, name: str = "date") -> tuple[date | None, list[FieldError]]:
    """A date field's text as the service reads dates (``YYYY-MM-DD``), or why it is not one."""
    try:
        return _ISO_DATE.validate_python(text.strip()), []
    except ValidationError as exc:
        return None, field_errors(
            {**e, "loc": (name, *e["loc"])} for e in exc.errors(include_url=False)
        )


FORM_MODELS: dict[str, type[BaseModel]] = {
    "injection": AdministrationIn,
    "self-injection": AdministrationIn,
    "lab": ObservationIn,
    "symptom": SymptomIn,
    "adverse-event": AdverseEventIn,
    "side-effect": AdverseEventIn,
    "prescription": PrescriptionIn,
    "decision": DecisionIn,
    "prior-treatment": PriorTreatmentIn,
}
