"""Typed inputs and outputs of the service layer (pydantic), shared by the API and the web UI.

Inputs check shape and type only (strictly: a dose of ``"1"`` is refused, not coerced). What a
code or unit may be is the knowledge base's business: every write is run through
``b12plan.contract.parse_case`` together with the rest of the patient's record, so the store can
never hold something the assessment would refuse.

Each clinical record input is the contract's model of that kind (``b12plan.contract.records``)
extended with what the store adds: a note, a batch number and its table columns
(``to_columns``/``from_row``). Its fields and its entry in the case document (``case_entry``)
are the contract's: declared once, nothing repeated here (ADR 0066).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    Strict,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from b12plan.contract import DEFAULT_JURISDICTION, records
from b12plan.contract.records import Code as Code  # shared with the API's parameters
from b12plan.contract.records import IsoDate as IsoDate
from b12plan.contract.records import Sex, no_nul
from b12plan.service.passwords import password_problem
from b12plan.store import models

Note = Annotated[str, Strict(), StringConstraints(max_length=2000), AfterValidator(no_nul)]
Slug = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
RecordStatus = Literal["active", "entered-in-error"]
Role = Literal["clinician", "patient", "admin", "carer"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _api_config(example: dict[str, Any] | None = None) -> ConfigDict:
    """A REST/web input's config: its OpenAPI example, and built when defined. The contract's
    records defer building (the CLI imports them on every start); these are FastAPI bodies,
    which must not be deferred (FastAPI wraps each in a field of its own)."""
    config = ConfigDict(defer_build=False)
    if example is not None:
        config["json_schema_extra"] = {"examples": [example]}
    return config


# --- clinical records ---------------------------------------------------------------------------
#
# Each kind's fields are the contract's (``b12plan.contract.records``, ADR 0066); the store's
# inputs add only what the store keeps besides: a ``note``, an administration's batch ``lot``,
# and the mapping to table columns.


class RecordIn(_In):
    """What the store adds to every clinical record: ``note``, free text kept with the record.

    Listed first among the bases of each input so its methods and ``note`` come after the
    contract's fields (``class SymptomIn(RecordIn, records.SymptomIn)``).
    """

    note: Note | None = None
    date_field: ClassVar[str | None] = None
    """The field that says when something happened: it may not lie ahead (an order may)."""

    columns: ClassVar[dict[str, str]] = {}
    """Fields stored under another attribute name (``status`` as ``symptom_status``)."""

    def to_columns(self) -> dict[str, Any]:
        """Column values for the record's table."""
        return {self.columns.get(name, name): value for name, value in self.model_dump().items()}

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """A stored row as its input, not judged again: a row today's rules refuse (a knowledge
        base that dropped a unit, a tightened limit) must reach ``parse_case``, which names it
        (``StoredRecordInvalid``), rather than fail while being read."""
        values = {name: getattr(row, cls.columns.get(name, name)) for name in cls.model_fields}
        return cast(Self, cls.model_construct(**values))

    if TYPE_CHECKING:  # provided by each kind's contract model (after this class in the MRO)

        def case_entry(self) -> Any:
            """This record as it appears in the contract case document."""

    def record_date(self) -> dt.date | None:
        """The day the record says something happened; None when it may lie ahead (an order)."""
        return None if self.date_field is None else cast(dt.date, getattr(self, self.date_field))


class CauseIn(RecordIn):
    """A cause of the deficiency (in the case document a bare code in ``causes``)."""

    model_config = _api_config({"code": "pernicious_anaemia"})

    code: records.CauseCode

    def case_entry(self) -> str:
        return self.code


class SymptomIn(RecordIn, records.SymptomIn):
    model_config = _api_config({"code": "paraesthesia", "date": "2026-01-02", "status": "present"})
    date_field: ClassVar[str | None] = "date"
    columns: ClassVar[dict[str, str]] = {"status": "symptom_status"}

    def to_columns(self) -> dict[str, Any]:
        return {**super().to_columns(), "reporter": self.reporter or "clinician"}


class ObservationIn(RecordIn, records.ObservationIn):
    model_config = _api_config(
        {"code": "b12_total", "date": "2025-12-20", "value": 98, "unit": "pmol/L"}
    )
    date_field: ClassVar[str | None] = "date"


class AdministrationIn(RecordIn, records.AdministrationIn):
    """A dose given: by the clinic, or by the patient or a carer (``lot`` is the batch number)."""

    model_config = _api_config(
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
    )
    date_field: ClassVar[str | None] = "date"
    lot: (
        Annotated[
            str, Strict(), StringConstraints(min_length=1, max_length=100), AfterValidator(no_nul)
        ]
        | None
    ) = None


class PrescriptionIn(RecordIn, records.PrescriptionIn):
    """An order. The case uses the one with the latest ``start`` on or before ``as_of``."""

    model_config = _api_config(
        {
            "product": "hydroxocobalamin",
            "dose": 1,
            "unit": "mg",
            "route": "IM",
            "phase": "loading",
            "interval_days": 2,
            "start": "2026-01-05",
        }
    )


class MedicationIn(RecordIn, records.MedicationIn):
    model_config = _api_config({"code": "folic_acid", "start": "2026-01-05"})


class AdverseEventIn(RecordIn, records.AdverseEventIn):
    model_config = _api_config({"code": "injection_site_pain", "date": "2026-01-07"})
    date_field: ClassVar[str | None] = "date"


class DecisionIn(RecordIn, records.DecisionIn):
    """A clinician's recorded decision (contract v1.1): what, when, by whom and why.

    ``by`` defaults to the signed-in clinician; ``reason`` is required (a decision that ends
    neurological loading or clears injections after a reaction must say why).
    """

    model_config = _api_config(
        {
            "code": "neuro_loading_complete",
            "date": "2026-02-20",
            "reason": "No further improvement in numbness over the last three reviews.",
        }
    )
    date_field: ClassVar[str | None] = "date"


class PriorTreatmentIn(RecordIn, records.PriorTreatmentIn):
    """Treatment before the first dose recorded here (transferred in, or records kept elsewhere).

    One current record per patient: correct it rather than adding another.
    """

    model_config = _api_config({"since": "2024-03-01", "loading_completed": True})
    date_field: ClassVar[str | None] = "since"


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
    str, Strict(), StringConstraints(min_length=1, max_length=200), AfterValidator(no_nul)
]


class PatientIn(_In, records.PatientDemographics):
    """Demographics: the case's (sex, dates) plus a display name (synthetic data only in this
    project: no real names), the jurisdiction whose protocols apply, and a note."""

    model_config = _api_config()

    display_name: DisplayName
    jurisdiction: records.Jurisdiction = DEFAULT_JURISDICTION
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
