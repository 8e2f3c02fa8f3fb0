"""Typed inputs and outputs of the service layer (pydantic), shared by the API and the web UI.

Inputs check shape and type only (strictly: a dose of ``"1"`` is refused, not coerced). What a
code or unit may be is the knowledge base's business: every write is also run through
``b12plan.contract.parse_case`` together with the rest of the patient's record, so the store can
never hold something the assessment would refuse.

Each record input knows its table columns (``to_columns``/``from_row``) and its entry in the
contract case document (``case_entry``): one place per kind, nothing repeated elsewhere.
"""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializeAsAny,
    Strict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from b12plan.contract import DEFAULT_JURISDICTION, parse_iso_date
from b12plan.service.passwords import password_problem
from b12plan.store import models


def _iso_date(value: object) -> dt.date:
    """``YYYY-MM-DD`` text (JSON) or a ``date`` (Python callers); nothing else."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("date_type", "expected a date as text 'YYYY-MM-DD'")
    try:
        return parse_iso_date(value)
    except ValueError as exc:
        raise PydanticCustomError("date_format", "{reason}", {"reason": str(exc)}) from None


def _not_blank(value: str) -> str:
    """A required explanation must say something."""
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _no_nul(value: str) -> str:
    """NUL cannot be stored in PostgreSQL text, and is never meaningful in a record."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
WholeNumber = Annotated[int, Strict(), Field(ge=-(2**31), le=2**31 - 1)]  # a database INTEGER
Code = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=60), AfterValidator(_no_nul)
]
Text = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=500), AfterValidator(_no_nul)
]
Note = Annotated[str, Strict(), StringConstraints(max_length=2000), AfterValidator(_no_nul)]
Slug = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Sex = Literal["female", "male", "other", "unknown"]
GivenBy = Literal["clinic", "self", "carer"]
Phase = Literal["loading", "maintenance"]
Reporter = Literal["clinician", "patient", "carer"]
RecordStatus = Literal["active", "entered-in-error"]
Role = Literal["clinician", "patient", "admin", "carer"]


def _number(value: float | None) -> float | int | None:
    """1.0 is written 1, as people write doses."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- clinical records ---------------------------------------------------------------------------


class RecordIn(_In):
    """Base of every clinical record input; ``note`` is free text kept with the record."""

    note: Note | None = None
    date_field: ClassVar[str] = "date"  # the field ``record_date`` reads, for error paths

    def to_columns(self) -> dict[str, Any]:
        """Column values for the record's table."""
        return self.model_dump()

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls.model_validate({name: getattr(row, name) for name in cls.model_fields})

    @abstractmethod
    def case_entry(self) -> Any:
        """This record as it appears in the contract case document."""

    def record_date(self) -> dt.date | None:
        """The day the record says something happened; None when it may lie ahead (an order)."""
        return None


class CauseIn(RecordIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "pernicious_anaemia"}]})

    code: Code

    def case_entry(self) -> str:
        return self.code


class SymptomIn(RecordIn):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "paraesthesia", "date": "2026-01-02", "status": "present"}]
        }
    )

    code: Code
    date: IsoDate
    status: Code
    reporter: Reporter | None = Field(
        default=None,
        description=(
            "Who assessed the symptom. Staff may say (default clinician); whatever a patient"
            " sends, their own records are stored as patient (or carer)."
        ),
    )

    def to_columns(self) -> dict[str, Any]:
        values = self.model_dump()
        values["symptom_status"] = values.pop("status")
        values["reporter"] = self.reporter or "clinician"
        return values

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(
            code=row.code,
            date=row.date,
            status=row.symptom_status,
            reporter=row.reporter,
            note=row.note,
        )

    def case_entry(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "date": self.date.isoformat(),
            "status": self.status,
            "reporter": self.reporter or "clinician",
        }

    def record_date(self) -> dt.date:
        return self.date


class ObservationIn(RecordIn):
    """A laboratory result: ``code`` or ``loinc`` (or both, if they agree)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "b12_total", "date": "2025-12-20", "value": 98, "unit": "pmol/L"}]
        }
    )

    code: Code | None = None
    loinc: Code | None = None
    date: IsoDate
    value: Number
    unit: Code
    reference_low: Number | None = None
    reference_high: Number | None = None

    def case_entry(self) -> dict[str, Any]:
        return _compact(
            {
                "code": self.code,
                "loinc": self.loinc,
                "date": self.date.isoformat(),
                "value": _number(self.value),
                "unit": self.unit,
                "reference_low": _number(self.reference_low),
                "reference_high": _number(self.reference_high),
            }
        )

    def record_date(self) -> dt.date:
        return self.date


class AdministrationIn(RecordIn):
    """A dose given: by the clinic, or by the patient or a carer (``lot`` is the batch number)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "date": "2026-01-05",
                    "product": "hydroxocobalamin",
                    "dose": 1,
                    "unit": "mg",
                    "route": "IM",
                    "given_by": "clinic",
                    "site": "left deltoid",
                    "lot": "HX1234",
                }
            ]
        }
    )

    date: IsoDate
    product: Code
    brand: Text | None = None
    dose: Number
    unit: Code
    route: Code
    given_by: GivenBy | None = None
    site: Text | None = None
    lot: (
        Annotated[
            str, Strict(), StringConstraints(min_length=1, max_length=100), AfterValidator(_no_nul)
        ]
        | None
    ) = None

    def case_entry(self) -> dict[str, Any]:
        return _compact(
            {
                "date": self.date.isoformat(),
                "product": self.product,
                "brand": self.brand,
                "dose": _number(self.dose),
                "unit": self.unit,
                "route": self.route,
                "given_by": self.given_by,
                "site": self.site,
            }
        )

    def record_date(self) -> dt.date:
        return self.date


class PrescriptionIn(RecordIn):
    """An order. The case uses the one with the latest ``start`` on or before ``as_of``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product": "hydroxocobalamin",
                    "dose": 1,
                    "unit": "mg",
                    "route": "IM",
                    "phase": "loading",
                    "interval_days": 2,
                    "start": "2026-01-05",
                }
            ]
        }
    )

    product: Code
    brand: Text | None = None
    dose: Number
    unit: Code
    route: Code
    phase: Phase
    interval_days: WholeNumber
    start: IsoDate
    end: IsoDate | None = None

    def case_entry(self) -> dict[str, Any]:
        return _compact(
            {
                "product": self.product,
                "brand": self.brand,
                "dose": _number(self.dose),
                "unit": self.unit,
                "route": self.route,
                "phase": self.phase,
                "interval_days": self.interval_days,
                "start": self.start.isoformat(),
                "end": _iso(self.end),
            }
        )


class MedicationIn(RecordIn):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "folic_acid", "start": "2026-01-05"}]}
    )

    code: Code
    start: IsoDate
    end: IsoDate | None = None

    def case_entry(self) -> dict[str, Any]:
        return _compact({"code": self.code, "start": self.start.isoformat(), "end": _iso(self.end)})


class AdverseEventIn(RecordIn):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "injection_site_pain", "date": "2026-01-07"}]}
    )

    code: Code
    date: IsoDate

    def case_entry(self) -> dict[str, Any]:
        return {"code": self.code, "date": self.date.isoformat()}

    def record_date(self) -> dt.date:
        return self.date


class DecisionIn(RecordIn):
    """A clinician's recorded decision (contract v1.1): what, when, by whom and why.

    ``by`` defaults to the signed-in clinician; ``reason`` is required (a decision that ends
    neurological loading or clears injections after a reaction must say why).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "neuro_loading_complete",
                    "date": "2026-02-20",
                    "reason": "No further improvement in numbness over the last three reviews.",
                }
            ]
        }
    )

    code: Code
    date: IsoDate
    by: Text | None = None
    reason: Annotated[Text, AfterValidator(_not_blank)]

    def case_entry(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "date": self.date.isoformat(),
            "by": self.by,
            "reason": self.reason,
        }

    def record_date(self) -> dt.date:
        return self.date


class PriorTreatmentIn(RecordIn):
    """Treatment before the first dose recorded here (transferred in, or records kept elsewhere).

    One current record per patient: correct it rather than adding another.
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"since": "2024-03-01", "loading_completed": True}]}
    )

    since: IsoDate
    loading_completed: Annotated[bool, Strict()]
    date_field: ClassVar[str] = "since"

    def case_entry(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "loading_completed": self.loading_completed}

    def record_date(self) -> dt.date:
        return self.since


R = TypeVar("R", bound=RecordIn)


@dataclass(frozen=True)
class RecordKind(Generic[R]):
    """A kind of clinical record: its API path segment, table, input type and who may write it."""

    name: str  # also the contract case's key ("prescriptions" feeds "prescription")
    label: str
    model: type[models.RecordMixin]
    input: type[R]
    patient_may_write: bool
    clinician_only: bool = False  # a clinical judgement: neither patients nor admins write it


KINDS: dict[str, RecordKind[Any]] = {
    k.name: k
    for k in (
        RecordKind("causes", "cause", models.CauseRow, CauseIn, False),
        RecordKind("symptoms", "symptom report", models.SymptomRow, SymptomIn, True),
        RecordKind("observations", "observation", models.ObservationRow, ObservationIn, False),
        RecordKind(
            "administrations", "administration", models.AdministrationRow, AdministrationIn, True
        ),
        RecordKind("prescriptions", "prescription", models.PrescriptionRow, PrescriptionIn, False),
        RecordKind("medications", "medication", models.MedicationRow, MedicationIn, False),
        RecordKind("adverse_events", "adverse event", models.AdverseEventRow, AdverseEventIn, True),
        RecordKind(
            "decisions", "decision", models.DecisionRow, DecisionIn, False, clinician_only=True
        ),
        RecordKind(
            "prior_treatment",
            "prior treatment",
            models.PriorTreatmentRow,
            PriorTreatmentIn,
            False,
        ),
    )
}
"""Every clinical record kind, by name. Patients may write symptoms, adverse events and their
own (self or carer) administrations; decisions are clinicians' only; everything else is the
clinic's."""

KIND_OF_INPUT: dict[type[RecordIn], RecordKind[Any]] = {k.input: k for k in KINDS.values()}


class StoredRecord(BaseModel, Generic[R]):
    """One version of a stored record: its clinical ``data`` and where it stands in history."""

    id: str
    kind: str
    patient_id: str
    version: int
    status: RecordStatus
    version_id: str = Field(description="Names this version (the audit log refers to it).")
    superseded_by: str | None = Field(
        description="The version_id that corrected this one; null if current or retracted."
    )
    recorded_at: dt.datetime
    recorded_by: str | None = Field(description="User id; null for system imports.")
    data: SerializeAsAny[R]

    @classmethod
    def of(cls, kind: RecordKind[R], row: models.RecordMixin) -> StoredRecord[R]:
        return StoredRecord[R](
            id=row.id,
            kind=kind.name,
            patient_id=row.patient_id,
            version=row.version,
            status=row.status,
            version_id=row.row_id,
            superseded_by=row.superseded_by,
            recorded_at=row.recorded_at,
            recorded_by=row.recorded_by,
            data=kind.input.from_row(row),
        )


# --- patients -----------------------------------------------------------------------------------

DisplayName = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)
]


class PatientIn(_In):
    """Demographics (synthetic data only in this project: no real names)."""

    display_name: DisplayName
    sex: Sex | None = None
    birth_date: IsoDate | None = None
    jurisdiction: Code = DEFAULT_JURISDICTION
    deceased_date: IsoDate | None = None
    note: Note | None = None


class NewPatient(PatientIn):
    """A patient to create; ``clinic_id`` defaults to the clinician's own clinic."""

    clinic_id: Slug | None = None


class PatientOut(BaseModel):
    id: str
    clinic_id: str
    version: int
    display_name: str
    sex: Sex | None
    birth_date: dt.date | None
    jurisdiction: str
    deceased_date: dt.date | None = None
    note: str | None
    recorded_at: dt.datetime


# --- users, clinics, sessions -------------------------------------------------------------------

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{2,99}$"
Username = Annotated[str, Strict(), StringConstraints(pattern=USERNAME_PATTERN)]


def _strong_password(value: str) -> str:
    """At least 12 characters and not a common password (``service.passwords``)."""
    problem = password_problem(value)
    if problem is not None:
        raise PydanticCustomError("weak_password", "{reason}", {"reason": problem})
    return value


Password = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=12, max_length=256),
    AfterValidator(_strong_password),
]


class NewClinic(_In):
    id: Slug
    name: DisplayName


class ClinicOut(BaseModel):
    id: str
    name: str
    created_at: dt.datetime


class NewUser(_In):
    """A user. Clinicians need ``clinic_id``; patients need ``patient_id`` (their own record)."""

    username: Username
    password: Password
    role: Role
    display_name: DisplayName | None = None
    clinic_id: Slug | None = None
    patient_id: Slug | None = None


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    role: Role
    clinic_id: str | None
    patient_id: str | None
    active: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class Principal:
    """The signed-in user a use case acts for (``user_id`` None: a system job such as an import)."""

    user_id: str | None
    username: str
    role: str
    clinic_id: str | None = None
    patient_id: str | None = None
    patient_ids: tuple[str, ...] = ()  # a carer's linked patients (active links, at sign-in)

    @property
    def label(self) -> str:
        return f"{self.role}:{self.username}" if self.user_id else f"system:{self.username}"

    @classmethod
    def system(cls, name: str) -> Principal:
        """A job run by the operator (CLI import, demo seeding): full access, audited by name."""
        return cls(user_id=None, username=name, role="admin")


class IssuedToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: dt.datetime
    user: UserOut


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    actor_user_id: str | None
    action: str
    entity_type: str
    entity_id: str
    patient_id: str | None
    before_version_id: str | None
    after_version_id: str | None
    detail: str | None


# --- worklist -----------------------------------------------------------------------------------

SortKey = Literal["urgency", "name", "next_dose_due", "patient_id"]
MAX_OFFSET = 1_000_000
"""Paging offsets stop here: far beyond any list, and inside every database's integer range."""


class WorklistQuery(_In):
    """Which patients need attention on ``as_of`` (default: today)."""

    as_of: IsoDate | None = None
    clinic: Slug | None = None
    codes: tuple[Code, ...] = ()
    sort: SortKey = "urgency"
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    monitoring_within_days: Annotated[int, Field(ge=0, le=366)] = 0


class MonitoringDue(BaseModel):
    item: str
    due: dt.date
    reason: str


class WorklistFinding(BaseModel):
    code: str
    severity: str
    message: str


class WorklistRow(BaseModel):
    patient_id: str
    display_name: str
    clinic_id: str
    phase: str
    deficiency: str
    worst_severity: str | None
    findings: list[WorklistFinding]
    next_dose_due: dt.date | None
    overdue_after: dt.date | None
    days_overdue: int | None = Field(
        description="Days since the next dose became overdue (as INJECTION_OVERDUE counts)."
    )
    monitoring_due: list[MonitoringDue]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
