"""Use cases on patient records: who may do what, and what a stored record means clinically.

``RecordsService`` is the one façade the REST API, the CLI and the web UI call. Every method
takes the acting ``Principal`` first and checks access itself, so no entry point can forget to.
Every write is one transaction holding the change and its audit entry; before it commits, the
patient's whole record is rebuilt as a contract case and run through ``b12plan.contract``, so the
store never holds anything the assessment would refuse.

Access rules (ADR 0012): an admin sees every clinic; a clinician sees the patients of their own
clinic; a patient sees only their own record, and may write symptoms, adverse events and
administrations they gave themselves (or a carer gave), and correct only what they entered.
A patient outside the caller's reach is "not found", so ids of other clinics' patients leak
nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from b12plan.contract import SCHEMA_VERSION, CaseError, case_to_dict, parse_case
from b12plan.core import Assessment, evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case
from b12plan.service.clock import Clock
from b12plan.service.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    field_error,
    field_errors,
)
from b12plan.service.schemas import (
    KIND_OF_INPUT,
    KINDS,
    MAX_OFFSET,
    AdministrationIn,
    AuditOut,
    CauseIn,
    DecisionIn,
    MonitoringDue,
    NewPatient,
    Page,
    PatientIn,
    PatientOut,
    PrescriptionIn,
    Principal,
    PriorTreatmentIn,
    R,
    RecordIn,
    RecordKind,
    StoredRecord,
    SymptomIn,
    WorklistFinding,
    WorklistQuery,
    WorklistRow,
)
from b12plan.store import models
from b12plan.store.database import Database
from b12plan.store.repository import (
    Author,
    RecordNotFound,
    Repository,
    VersionConflict,
    all_rows,
    current_rows,
    latest_version,
    versions,
)

PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_CHUNK = 500


def new_uuid() -> str:
    """Random record ids (the default id factory; tests inject a predictable one)."""
    return uuid.uuid4().hex


class StoredRecordInvalid(ServiceError):
    """A stored record no longer passes validation (e.g. the knowledge base dropped a unit)."""

    type = "stored-record-invalid"
    title = "Stored record fails validation"

    def __init__(self, detail: str, errors: Sequence[FieldError]) -> None:
        super().__init__(detail)
        self.errors = list(errors)


@dataclass(frozen=True)
class PatientRecord:
    """A patient's identity, current demographics and current (active) clinical rows."""

    patient: models.Patient
    demographics: models.Demographics
    rows: dict[str, list[models.RecordMixin]]


@dataclass(frozen=True)
class CaseDocument:
    """A contract case built from the store, and which stored record each entry came from."""

    document: dict[str, Any]
    sources: dict[str, tuple[str, str]]  # "observations[2]" -> ("observations", record id)


# --- access -------------------------------------------------------------------------------------


def may_see(who: Principal, patient: models.Patient) -> bool:
    if who.role == "admin":
        return True
    if who.role == "clinician":
        return who.clinic_id is not None and patient.clinic_id == who.clinic_id
    if who.role == "carer":
        return patient.id in who.patient_ids
    return who.patient_id is not None and patient.id == who.patient_id


CARER_KINDS = ("administrations",)
"""What a carer may read: the doses (they see the schedule through the assessment)."""
CARER_WRITES = ("administrations", "symptoms")
"""What a carer may log: the doses they give, and the symptoms they observe (stored as
``reporter: carer``)."""


def _carer_reads(who: Principal, kind: RecordKind[Any]) -> None:
    if who.role == "carer" and kind.name not in CARER_KINDS:
        raise Forbidden(f"carers see the schedule and the doses, not {kind.label}s")


def _not_carer(who: Principal, what: str) -> None:
    if who.role == "carer":
        raise Forbidden(f"carers may not {what}")


def _require_staff(who: Principal, action: str) -> None:
    if who.role not in ("clinician", "admin"):
        raise Forbidden(f"only clinicians and admins may {action}")


def _permit_write(
    who: Principal, kind: RecordKind[R], data: R | None, existing: models.RecordMixin | None
) -> R | None:
    """The record as it may be written by ``who``.

    A patient's dose defaults to self-given; a carer's is always carer-given, and carers log
    doses only. Decisions are clinicians' alone, and name the clinician by default. A symptom
    says who assessed it (``_reported_by``).
    """
    if kind.clinician_only and who.role != "clinician":
        raise Forbidden(f"only clinicians may record {kind.label}s")
    if who.role == "carer":
        if kind.name not in CARER_WRITES:
            raise Forbidden(f"carers may log doses and symptoms only, not {kind.label}s")
        if existing is not None and existing.recorded_by != who.user_id:
            raise Forbidden(f"carers may correct only the {kind.label}s they logged themselves")
        if kind.name == "symptoms":
            return _reported_by(who, data)
        given_by = getattr(data, "given_by", None) if data is not None else None
        if data is not None and given_by not in (None, "carer"):
            raise Forbidden("carers log the doses they gave: given_by 'carer'")
        return None if data is None else data.model_copy(update={"given_by": "carer"})
    data = _reported_by(who, data)
    if who.role != "patient":
        if isinstance(data, DecisionIn) and data.by is None:
            return cast(R, data.model_copy(update={"by": who.username}))
        return data
    if not kind.patient_may_write:
        raise Forbidden(f"patients may not change {kind.label}s; ask the clinic")
    if existing is not None and existing.recorded_by != who.user_id:
        raise Forbidden(f"patients may correct only the {kind.label}s they entered themselves")
    given_by = getattr(data, "given_by", None) if data is not None else None
    if data is not None and kind.name == "administrations":
        if given_by == "clinic":
            raise Forbidden("patients may log only doses they (or a carer) gave: given_by 'self'")
        if given_by is None:
            return data.model_copy(update={"given_by": "self"})
    return data


STAFF_ROLES = ("clinician", "admin")


def _reported_by(who: Principal, data: R | None) -> R | None:
    """A symptom as stored: staff may say who reported it (default ``clinician``); anyone else
    (a patient, a carer) is stored as ``patient`` or ``carer`` whatever the request says, since
    only a clinician's assessment may end neurological loading (contract v1.1, ADR 0060)."""
    if not isinstance(data, SymptomIn):
        return data
    if who.role in STAFF_ROLES:
        reporter = data.reporter or "clinician"
    elif who.role == "carer" or data.reporter == "carer":
        reporter = "carer"
    else:
        reporter = "patient"
    return cast(R, data.model_copy(update={"reporter": reporter}))


# --- reading the store --------------------------------------------------------------------------


def load_records(session: Session, patient_ids: Collection[str]) -> dict[str, PatientRecord]:
    """Current records of these patients (batched: one query per table per chunk)."""
    out: dict[str, PatientRecord] = {}
    ids = list(dict.fromkeys(patient_ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        patients = session.scalars(select(models.Patient).where(models.Patient.id.in_(chunk)))
        demographics = {d.patient_id: d for d in current_rows(session, models.Demographics, chunk)}
        rows: dict[str, dict[str, list[models.RecordMixin]]] = {pid: {} for pid in chunk}
        for kind in KINDS.values():
            for row in current_rows(session, kind.model, chunk):
                rows[row.patient_id].setdefault(kind.name, []).append(row)
        for patient in patients:
            demo = demographics.get(patient.id)
            if demo is not None:
                out[patient.id] = PatientRecord(patient, demo, rows[patient.id])
    return out


def current_prescription(
    rows: Iterable[models.RecordMixin], as_of: dt.date
) -> models.PrescriptionRow | None:
    """The order in force on ``as_of``: the latest ``start`` on or before it."""
    candidates = [
        cast(models.PrescriptionRow, r)
        for r in rows
        if cast(models.PrescriptionRow, r).start <= as_of
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.start, r.recorded_at, r.id))


def build_case(
    record: PatientRecord, as_of: dt.date, *, prescription_id: str | None = None
) -> CaseDocument:
    """The stored record as a contract v1 case (entered-in-error rows are not in ``record``).

    Entries are sorted (by date, then content), so the same record always gives the same
    document. ``prescription_id`` forces that order into the case (used to validate a write of
    an order that is not, or not yet, the one in force).
    """
    demo = record.demographics
    patient = {
        "id": record.patient.id,
        "sex": demo.sex,
        "birth_date": _iso(demo.birth_date),
        "deceased_date": _iso(demo.deceased_date),
    }
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "as_of": as_of.isoformat(),
        "jurisdiction": demo.jurisdiction,
        "patient": {k: v for k, v in patient.items() if v is not None},
    }
    sources: dict[str, tuple[str, str]] = {"patient": ("demographics", record.patient.id)}
    for kind in KINDS.values():
        rows = record.rows.get(kind.name, [])
        if kind.name == "prescriptions":
            chosen = next((r for r in rows if r.id == prescription_id), None)
            rx = chosen or current_prescription(rows, as_of)
            if rx is not None:
                document["prescription"] = PrescriptionIn.from_row(rx).case_entry()
                sources["prescription"] = (kind.name, rx.id)
            continue
        if kind.name == "prior_treatment":
            if rows:  # one current record (the service refuses a second)
                prior = min(rows, key=lambda r: (r.recorded_at, r.id))
                document["prior_treatment"] = PriorTreatmentIn.from_row(prior).case_entry()
                sources["prior_treatment"] = (kind.name, prior.id)
            continue
        entries = sorted(
            ((kind.input.from_row(r).case_entry(), r.id) for r in rows),
            key=lambda pair: (_entry_date(pair[0]), json.dumps(pair[0], sort_keys=True), pair[1]),
        )
        document[kind.name] = [entry for entry, _ in entries]
        for i, (_, record_id) in enumerate(entries):
            sources[f"{kind.name}[{i}]"] = (kind.name, record_id)
    return CaseDocument(document, sources)


def stored_case(record: PatientRecord, as_of: dt.date, knowledge: Knowledge) -> Case:
    """The stored record as a core ``Case``: the store's document parsed by the contract, once,
    at the store's edge (``CaseError`` when the record fails validation). Every reader of the
    store that needs a ``Case`` goes through here."""
    return parse_case(build_case(record, as_of).document, knowledge)


def _entry_date(entry: object) -> str:
    if isinstance(entry, dict):
        return str(entry.get("date") or entry.get("start") or "")
    return ""


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


_LOC_HEAD = re.compile(r"^(?P<head>[a-z_]+(?:\[\d+\])?)(?:\.(?P<rest>.*))?$")


class RecordsService:
    """Patient records, assessments and the worklist for signed-in users."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        knowledge: Knowledge,
        new_id: Callable[[], str] = new_uuid,
        cache_size: int = 1024,
    ) -> None:
        self.db = db
        self.clock = clock
        self.knowledge = knowledge
        self.new_id = new_id
        self._records: _Lru[tuple[str, int], PatientRecord] = _Lru(cache_size)
        self._assessments: _Lru[tuple[str, int, dt.date], Assessment] = _Lru(cache_size)
        self._cases: _Lru[tuple[str, int, dt.date], Case] = _Lru(cache_size)
        self._documents: _Lru[tuple[str, int, dt.date], dict[str, Any]] = _Lru(cache_size)

    # --- patients -----------------------------------------------------------------------------

    def create_patient(
        self, who: Principal, new: NewPatient, *, patient_id: str | None = None
    ) -> PatientOut:
        """A new patient in ``new.clinic_id`` (a clinician's own clinic by default)."""
        _require_staff(who, "register patients")
        clinic_id = new.clinic_id or who.clinic_id
        if clinic_id is None:
            raise InvalidInput([field_error("clinic_id", "required", "missing")])
        if who.role == "clinician" and clinic_id != who.clinic_id:
            raise Forbidden("clinicians register patients in their own clinic only")
        self._check_demographics(new)
        pid = patient_id or self.new_id()
        with self.db.writing() as session:
            patient, demo = self._create_patient(session, who, pid, clinic_id, new)
            self._validate(session, pid, ("demographics", pid))
            return _patient_out(patient, demo)

    def list_patients(
        self, who: Principal, *, clinic: str | None = None, limit: int = 50, offset: int = 0
    ) -> Page[PatientOut]:
        """Patients the caller may see, by display name."""
        _check_page(limit, offset)
        demo = models.Demographics
        query = (
            select(models.Patient, demo)
            .join(demo, demo.patient_id == models.Patient.id)
            .where(demo.status == models.ACTIVE)
        )
        if clinic is not None:
            if who.role == "clinician" and clinic != who.clinic_id:
                raise Forbidden("clinicians see their own clinic's patients only")
            query = query.where(models.Patient.clinic_id == clinic)
        query = self._scope(who, query)
        with self.db.reading() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(
                query.order_by(demo.display_name, models.Patient.id).limit(limit).offset(offset)
            ).all()
            items = [_patient_out(p, d) for p, d in rows]
        return Page[PatientOut](items=items, total=total, limit=limit, offset=offset)

    def get_patient(self, who: Principal, patient_id: str) -> PatientOut:
        with self.db.reading() as session:
            patient = self._visible_patient(session, who, patient_id)
            demo = self._demographics(session, patient_id)
            return _patient_out(patient, demo)

    def correct_patient(
        self, who: Principal, patient_id: str, data: PatientIn, *, expected_version: int
    ) -> PatientOut:
        """New demographics replacing ``expected_version`` (409 if someone got there first)."""
        _require_staff(who, "change demographics")
        self._check_demographics(data)
        with self.db.writing() as session:
            patient = self._visible_patient(session, who, patient_id)
            repo = self._repo(session, who)
            demo = self._store_call(
                lambda: repo.correct(
                    models.Demographics,
                    patient_id,
                    patient_id,
                    expected_version,
                    _demographics_columns(data),
                )
            )
            self._validate(session, patient_id, ("demographics", patient_id))
            return _patient_out(patient, demo)

    # --- clinical records ---------------------------------------------------------------------

    def add_record(self, who: Principal, patient_id: str, data: R) -> StoredRecord[R]:
        """Record something new about a patient (version 1 of a new record)."""
        kind = _kind_of(data)
        with self.db.writing() as session:
            self._visible_patient(session, who, patient_id)
            permitted = _permit_write(who, kind, data, None)
            assert permitted is not None
            self._check_record(session, kind, patient_id, permitted, None)
            row = self._repo(session, who).create(kind.model, patient_id, permitted.to_columns())
            self._validate(session, patient_id, (kind.name, row.id))
            return StoredRecord.of(kind, row)

    def add_records(
        self, who: Principal, patient_id: str, items: Sequence[RecordIn]
    ) -> list[StoredRecord[Any]]:
        """Record several new things at once, in one transaction: all are stored, or none.

        For forms that describe several records (the symptom diary): a problem with any item
        leaves nothing half-saved. Field errors are prefixed with the item's index
        (``[1].date``) when there is more than one item.
        """
        if not items:
            return []
        with self.db.writing() as session:
            self._visible_patient(session, who, patient_id)
            repo = self._repo(session, who)
            written: list[tuple[RecordKind[Any], models.RecordMixin]] = []
            for index, data in enumerate(items):
                kind = _kind_of(data)
                permitted = _permit_write(who, kind, data, None)
                assert permitted is not None
                try:
                    self._check_record(session, kind, patient_id, permitted, None)
                except InvalidInput as exc:
                    raise InvalidInput(_indexed(exc.errors, index, len(items))) from None
                row = repo.create(kind.model, patient_id, permitted.to_columns())
                written.append((kind, row))
            self._validate(session, patient_id, *((kind.name, row.id) for kind, row in written))
            return [StoredRecord.of(kind, row) for kind, row in written]

    def log_planned_dose(
        self, who: Principal, patient_id: str, on: dt.date, *, site: str | None = None
    ) -> StoredRecord[AdministrationIn]:
        """A dose given as planned: product, dose, unit and route from the current regimen (the
        carer's "I gave the injection"). With no regimen nothing is guessed: ``InvalidInput``
        on ``date``. Who gave it follows the writer (a carer's is ``carer``)."""
        regimen = self.assess_patient(who, patient_id).regimen
        if regimen is None:
            raise InvalidInput(
                [
                    field_error(
                        "date",
                        "there is no injection plan: ask the clinic before logging",
                        "no_regimen",
                    )
                ]
            )
        try:
            data = AdministrationIn.model_validate(
                {
                    "date": on,
                    "product": regimen.product,
                    "dose": regimen.dose,
                    "unit": regimen.unit,
                    "route": regimen.route,
                    "given_by": "carer" if who.role == "carer" else None,
                    "site": site.strip() if site and site.strip() else None,
                }
            )
        except ValidationError as exc:
            raise InvalidInput(
                field_errors(exc.errors(include_url=False), AdministrationIn)
            ) from None
        return self.add_record(who, patient_id, data)

    def save_prior_treatment(
        self, who: Principal, patient_id: str, data: PriorTreatmentIn
    ) -> StoredRecord[PriorTreatmentIn]:
        """A patient has one prior treatment record: add it, or correct the current one (the
        form that edits it says "save", not "add another")."""
        kind = KINDS["prior_treatment"]
        current = self.list_records(who, patient_id, kind)
        if not current:
            return self.add_record(who, patient_id, data)
        latest = current[-1]
        return self.correct_record(
            who, patient_id, latest.id, data, expected_version=latest.version
        )

    def correct_record(
        self, who: Principal, patient_id: str, record_id: str, data: R, *, expected_version: int
    ) -> StoredRecord[R]:
        """A corrected version of a record; the edited version is marked entered-in-error."""
        kind = _kind_of(data)
        with self.db.writing() as session:
            self._visible_patient(session, who, patient_id)
            existing = self._existing(session, kind, patient_id, record_id)
            permitted = _permit_write(who, kind, data, existing)
            assert permitted is not None
            self._check_record(session, kind, patient_id, permitted, record_id)
            repo = self._repo(session, who)
            row = self._store_call(
                lambda: repo.correct(
                    kind.model, patient_id, record_id, expected_version, permitted.to_columns()
                )
            )
            self._validate(session, patient_id, (kind.name, row.id))
            return StoredRecord.of(kind, row)

    def retract_record(
        self,
        who: Principal,
        patient_id: str,
        kind: RecordKind[R],
        record_id: str,
        *,
        expected_version: int,
        reason: str | None = None,
    ) -> StoredRecord[R]:
        """Mark a record entered-in-error (it was wrong, and nothing replaces it). Kept forever."""
        with self.db.writing() as session:
            self._visible_patient(session, who, patient_id)
            existing = self._existing(session, kind, patient_id, record_id)
            _permit_write(who, kind, None, existing)
            repo = self._repo(session, who)
            row = self._store_call(
                lambda: repo.retract(
                    kind.model, patient_id, record_id, expected_version, reason=reason
                )
            )
            return StoredRecord.of(kind, row)

    def list_records(
        self,
        who: Principal,
        patient_id: str,
        kind: RecordKind[R],
        *,
        include_entered_in_error: bool = False,
    ) -> list[StoredRecord[R]]:
        """Current records of one kind; with ``include_entered_in_error``, every version."""
        _carer_reads(who, kind)
        with self.db.reading() as session:
            self._visible_patient(session, who, patient_id)
            rows = (
                all_rows(session, kind.model, patient_id)
                if include_entered_in_error
                else current_rows(session, kind.model, [patient_id])
            )
            return [StoredRecord.of(kind, r) for r in rows]

    def get_record(
        self, who: Principal, patient_id: str, kind: RecordKind[R], record_id: str
    ) -> StoredRecord[R]:
        """The newest version of a record (its ``status`` says if it was entered in error)."""
        _carer_reads(who, kind)
        with self.db.reading() as session:
            self._visible_patient(session, who, patient_id)
            return StoredRecord.of(kind, self._existing(session, kind, patient_id, record_id))

    def record_history(
        self, who: Principal, patient_id: str, kind: RecordKind[R], record_id: str
    ) -> list[StoredRecord[R]]:
        """Every version of a record, oldest first."""
        _carer_reads(who, kind)
        with self.db.reading() as session:
            self._visible_patient(session, who, patient_id)
            rows = versions(session, kind.model, patient_id, record_id)
            if not rows:
                raise NotFound(f"no {kind.label} {record_id!r} for patient {patient_id!r}")
            return [StoredRecord.of(kind, r) for r in rows]

    def audit_trail(
        self, who: Principal, patient_id: str, *, limit: int = 100, offset: int = 0
    ) -> Page[AuditOut]:
        """Every change to one patient's record, newest first."""
        _not_carer(who, "read the audit trail")
        _check_page(limit, offset, max_limit=500)
        entry = models.AuditEntry
        with self.db.reading() as session:
            self._visible_patient(session, who, patient_id)
            where = entry.patient_id == patient_id
            total = session.scalar(select(func.count()).where(where)) or 0
            rows = session.scalars(
                select(entry).where(where).order_by(entry.id.desc()).limit(limit).offset(offset)
            ).all()
            items = [_audit_out(e) for e in rows]
        return Page[AuditOut](items=items, total=total, limit=limit, offset=offset)

    # --- cases and assessments ----------------------------------------------------------------

    def case_document(
        self, who: Principal, patient_id: str, *, as_of: dt.date | None = None
    ) -> dict[str, Any]:
        """The stored record as a contract case document, for callers that write it out as JSON
        (the REST export, ``b12plan export --format case``). Adapters that use the case in the
        process take ``patient_case`` instead."""
        _not_carer(who, "export the whole record")
        day = check_as_of(as_of or self.clock.today())
        with self.db.reading() as session:
            record, stamp = self._current_record(session, who, patient_id)
        key = (patient_id, stamp, day)
        document = self._documents.get(key)
        if document is None:
            document = build_case(record, day).document
            self._documents.put(key, document)
        return copy.deepcopy(document)  # the caller's to change; the cached one stays as built

    def patient_case(
        self, who: Principal, patient_id: str, *, as_of: dt.date | None = None
    ) -> Case:
        """The stored record as a core ``Case`` on ``as_of`` (default: today), for adapters that
        hand it on (FHIR export, CDS Hooks, the web pages, reminders): built from the store and
        parsed by the contract once, here, at the store's edge. ``StoredRecordInvalid`` when
        the stored record fails validation."""
        _not_carer(who, "export the whole record")
        day = check_as_of(as_of or self.clock.today())
        with self.db.reading() as session:
            record, stamp = self._current_record(session, who, patient_id)
        return self._case_cached(record, stamp, day)

    def assess_patient(
        self, who: Principal, patient_id: str, *, as_of: dt.date | None = None
    ) -> Assessment:
        """Evaluate the stored record on ``as_of`` (default: today), ignoring entered-in-error."""
        day = check_as_of(as_of or self.clock.today())
        with self.db.reading() as session:
            record, stamp = self._current_record(session, who, patient_id)
        key = (patient_id, stamp, day)
        cached = self._assessments.get(key)
        if cached is None:
            case = self._case_cached(record, stamp, day)
            cached = evaluate(case, self.knowledge, as_of=day)
            self._assessments.put(key, cached)
        return cached

    def assess_document(self, document: object) -> Assessment:
        """Stateless: a contract case in, its assessment out (``InvalidInput`` names the field)."""
        try:
            case = parse_case(document, self.knowledge)
        except CaseError as exc:
            raise InvalidInput(cast(list[FieldError], exc.errors)) from None
        return evaluate(case, self.knowledge, as_of=check_as_of(case.as_of))

    def import_case(
        self,
        who: Principal,
        case: Case | object,
        *,
        clinic_id: str | None = None,
        display_name: str | None = None,
        patient_id: str | None = None,
    ) -> str:
        """Store a case as a new patient (one transaction); returns the patient id.

        ``case`` is a ``Case`` an adapter has already read (a FHIR import), or a contract case
        document (parsed JSON: a file, the demo), which the contract parses here. The id is
        ``patient_id``, else the case's ``patient.id``, else a new one. The case's ``as_of`` is
        not stored: it is only the date the case was read for.
        """
        _require_staff(who, "import patients")
        if not isinstance(case, Case):
            try:
                case = parse_case(case, self.knowledge)
            except CaseError as exc:
                raise InvalidInput(cast(list[FieldError], exc.errors)) from None
        doc = case_to_dict(case)  # the store's rows are written from the contract's document
        pid = patient_id or case.patient.id or self.new_id()
        if not PATIENT_ID.fullmatch(pid):
            raise InvalidInput(
                [
                    field_error(
                        "patient.id",
                        "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter"
                        " or digit",
                        "patient_id_format",
                    )
                ]
            )
        clinic = clinic_id or who.clinic_id
        if clinic is None:
            raise InvalidInput([field_error("clinic_id", "required", "missing")])
        if who.role == "clinician" and clinic != who.clinic_id:
            raise Forbidden("clinicians import patients into their own clinic only")
        new = NewPatient(
            display_name=display_name or f"Imported patient {pid}",
            sex=case.patient.sex,
            birth_date=case.patient.birth_date,
            jurisdiction=case.jurisdiction,
            deceased_date=case.patient.deceased_date,
            clinic_id=clinic,
        )
        entries: list[tuple[str, RecordKind[Any], RecordIn]] = []
        for kind in KINDS.values():
            if kind.name == "prescriptions":
                if "prescription" in doc:
                    entries.append(
                        ("prescription", kind, PrescriptionIn.model_validate(doc["prescription"]))
                    )
                continue
            if kind.name == "prior_treatment":
                if "prior_treatment" in doc:
                    prior = PriorTreatmentIn.model_validate(doc["prior_treatment"])
                    entries.append(("prior_treatment", kind, prior))
                continue
            for i, entry in enumerate(doc.get(kind.name, [])):
                data = (
                    CauseIn(code=entry)
                    if kind.name == "causes"
                    else kind.input.model_validate(entry)
                )
                entries.append((f"{kind.name}[{i}]", kind, data))
        problems = [
            problem
            for loc, _, data in entries
            for problem in self._future_dated(data, prefix=f"{loc}.")
        ]
        if problems:
            raise InvalidInput(problems)
        with self.db.writing() as session:
            self._create_patient(session, who, pid, clinic, new)
            repo = self._repo(session, who)
            prescription_id = None
            for _, kind, data in entries:
                row = repo.create(kind.model, pid, data.to_columns())
                if kind.name == "prescriptions":
                    prescription_id = row.id
            repo.audit("import", "patient", pid, patient_id=pid, detail="contract case")
            record = load_records(session, [pid])[pid]
            built = build_case(record, self.clock.today(), prescription_id=prescription_id)
            try:
                parse_case(built.document, self.knowledge)
            except CaseError as exc:
                raise InvalidInput(cast(list[FieldError], exc.errors)) from None
        return pid

    def worklist(self, who: Principal, query: WorklistQuery) -> Page[WorklistRow]:
        """Patients needing attention on ``as_of``: critical or warning findings (overdue
        injections among them) or monitoring due within ``monitoring_within_days``; with
        ``codes``, the patients with any of those finding codes."""
        _require_staff(who, "see the worklist")
        day = check_as_of(query.as_of or self.clock.today())
        if who.role == "clinician" and query.clinic not in (None, who.clinic_id):
            raise Forbidden("clinicians see their own clinic's worklist only")
        select_ids = select(models.Patient.id).order_by(models.Patient.id)
        if query.clinic is not None:
            select_ids = select_ids.where(models.Patient.clinic_id == query.clinic)
        select_ids = self._scope(who, select_ids)
        with self.db.reading() as session:
            ids = list(session.scalars(select_ids).all())
            records = load_records(session, ids)
        horizon = day + dt.timedelta(days=query.monitoring_within_days)
        wanted = set(query.codes)
        rows: list[WorklistRow] = []
        for pid in ids:
            record = records.get(pid)
            if record is None:
                continue
            try:
                assessment = self._evaluate(record, day)
            except InvalidInput:
                continue  # born after as_of: nothing to do for this patient on that day
            row = _worklist_row(record, assessment, day, horizon)
            if wanted:
                if wanted & {f.code for f in row.findings}:
                    rows.append(row)
            elif row.worst_severity in ("critical", "warning") or row.monitoring_due:
                rows.append(row)
        rows.sort(key=_sort_key(query.sort))
        page = rows[query.offset : query.offset + query.limit]
        return Page[WorklistRow](
            items=page, total=len(rows), limit=query.limit, offset=query.offset
        )

    # --- internals ----------------------------------------------------------------------------

    def _current_record(
        self, session: Session, who: Principal, patient_id: str
    ) -> tuple[PatientRecord, int]:
        """The current record of a patient ``who`` may see, cached while nothing has changed.

        The key is the number of audit entries about the patient: every committed change adds
        one (in the same transaction), and none is ever removed, so a new count means new data.
        The count is read with the access check, before the rows, so cached rows are never
        older than their key.
        """
        if not PATIENT_ID.fullmatch(patient_id):
            raise NotFound(f"no patient {patient_id[:64]!r}")
        count = (
            select(func.count())
            .select_from(models.AuditEntry)
            .where(models.AuditEntry.patient_id == patient_id)
            .scalar_subquery()
        )
        found = session.execute(
            select(models.Patient, count).where(models.Patient.id == patient_id)
        ).first()
        if found is None or not may_see(who, found[0]):
            raise NotFound(f"no patient {patient_id!r}")
        stamp = int(found[1] or 0)
        record = self._records.get((patient_id, stamp))
        if record is None:
            record = load_records(session, [patient_id])[patient_id]
            self._records.put((patient_id, stamp), record)
        return record, stamp

    def _repo(self, session: Session, who: Principal) -> Repository:
        return Repository(
            session,
            author=Author(name=who.label, user_id=who.user_id),
            now=self.clock.now(),
            new_id=self.new_id,
        )

    def _scope(self, who: Principal, query: Any) -> Any:
        """Restrict a query over patients to those ``who`` may see."""
        if who.role == "admin":
            return query
        if who.role == "clinician":
            return query.where(models.Patient.clinic_id == who.clinic_id)
        if who.role == "carer":
            return query.where(models.Patient.id.in_(who.patient_ids))
        return query.where(models.Patient.id == who.patient_id)

    def _visible_patient(self, session: Session, who: Principal, patient_id: str) -> models.Patient:
        if not PATIENT_ID.fullmatch(patient_id):  # not an id at all (and never sent to SQL)
            raise NotFound(f"no patient {patient_id[:64]!r}")
        patient = session.get(models.Patient, patient_id)
        if patient is None or not may_see(who, patient):
            raise NotFound(f"no patient {patient_id!r}")
        return patient

    def _demographics(self, session: Session, patient_id: str) -> models.Demographics:
        rows = current_rows(session, models.Demographics, [patient_id])
        if not rows:
            raise NotFound(f"no patient {patient_id!r}")
        return rows[0]

    def _existing(
        self, session: Session, kind: RecordKind[Any], patient_id: str, record_id: str
    ) -> models.RecordMixin:
        row = latest_version(session, kind.model, patient_id, record_id)
        if row is None:
            raise NotFound(f"no {kind.label} {record_id!r} for patient {patient_id!r}")
        return row

    def _create_patient(
        self, session: Session, who: Principal, pid: str, clinic_id: str, new: PatientIn
    ) -> tuple[models.Patient, models.Demographics]:
        if session.get(models.Clinic, clinic_id) is None:
            raise InvalidInput(
                [field_error("clinic_id", f"unknown clinic {clinic_id!r}", "unknown_clinic")]
            )
        if session.get(models.Patient, pid) is not None:
            raise Conflict(f"patient {pid!r} already exists")
        repo = self._repo(session, who)
        patient = models.Patient(id=pid, clinic_id=clinic_id, created_at=repo.now)
        session.add(patient)
        session.flush()
        repo.audit("create", "patient", pid, patient_id=pid, detail=f"clinic {clinic_id}")
        demo = repo.create(models.Demographics, pid, _demographics_columns(new), entity_id=pid)
        return patient, demo

    def _check_record(
        self,
        session: Session,
        kind: RecordKind[Any],
        patient_id: str,
        data: RecordIn,
        replacing: str | None,
    ) -> None:
        """Checks a single record needs beyond the case contract."""
        problems = self._future_dated(data)
        if isinstance(data, PriorTreatmentIn):
            for prior in current_rows(session, models.PriorTreatmentRow, [patient_id]):
                if prior.id != replacing:
                    problems.append(
                        field_error(
                            "since",
                            f"prior treatment is already recorded (record {prior.id});"
                            " correct that record instead",
                            "duplicate",
                        )
                    )
        if isinstance(data, CauseIn):
            for row in current_rows(session, models.CauseRow, [patient_id]):
                if row.code == data.code and row.id != replacing:
                    problems.append(
                        field_error(
                            "code",
                            f"cause {data.code!r} is already recorded (record {row.id})",
                            "duplicate",
                        )
                    )
        if problems:
            raise InvalidInput(problems)

    def _check_demographics(self, data: PatientIn) -> None:
        """A death cannot be recorded before it happens."""
        today = self.clock.today()
        if data.deceased_date is not None and data.deceased_date > today:
            raise InvalidInput(
                [
                    field_error(
                        "deceased_date",
                        f"{data.deceased_date.isoformat()} is in the future"
                        f" (today is {today.isoformat()})",
                        "date_in_future",
                    )
                ]
            )

    def _future_dated(self, data: RecordIn, prefix: str = "") -> list[FieldError]:
        """Events cannot be recorded before they happen (orders may start in the future)."""
        when = data.record_date()
        today = self.clock.today()
        if when is not None and when > today:
            return [
                field_error(
                    f"{prefix}{data.date_field}",
                    f"{when.isoformat()} is in the future (today is {today.isoformat()})",
                    "date_in_future",
                )
            ]
        return []

    def _validate(self, session: Session, patient_id: str, *written: tuple[str, str]) -> None:
        """Refuse the write if the patient's record, with it, is not a valid contract case.

        Runs inside the write transaction, after the rows are flushed: the check sees exactly
        what would be committed. Errors about a written record name its own fields (prefixed
        with its index, ``[2].date``, when several were written at once).
        """
        session.flush()
        record = load_records(session, [patient_id])[patient_id]
        today = self.clock.today()
        prescription_id = next((w[1] for w in written if w[0] == "prescriptions"), None)
        built = build_case(record, today, prescription_id=prescription_id)
        try:
            parse_case(built.document, self.knowledge)
        except CaseError as exc:
            problems: list[FieldError] = []
            for e in exc.errors:
                source = built.sources.get(_head(e["loc"]))
                index = written.index(source) if source in written else 0
                problem = _localise(e, built.sources, written[index], today)
                if source in written:
                    problem = _indexed([problem], index, len(written))[0]
                problems.append(problem)
            raise InvalidInput(problems) from None

    def _case_cached(self, record: PatientRecord, stamp: int, day: dt.date) -> Case:
        """``_case_of``, kept while the record is unchanged (``stamp``: see ``_current_record``)."""
        key = (record.patient.id, stamp, day)
        case = self._cases.get(key)
        if case is None:
            case = self._case_of(record, day)
            self._cases.put(key, case)
        return case

    def _evaluate(self, record: PatientRecord, day: dt.date) -> Assessment:
        return evaluate(self._case_of(record, day), self.knowledge, as_of=day)

    def _case_of(self, record: PatientRecord, day: dt.date) -> Case:
        """``stored_case``, its failures as the service's errors."""
        try:
            case = stored_case(record, day, self.knowledge)
        except CaseError as exc:
            birth = record.demographics.birth_date
            if birth is not None and birth > day:
                raise InvalidInput(
                    [
                        field_error(
                            "as_of",
                            f"{day.isoformat()} is before the patient's birth date",
                            "before_birth",
                        )
                    ]
                ) from None
            raise StoredRecordInvalid(
                f"the stored record of patient {record.patient.id!r} fails validation"
                f" with knowledge {self.knowledge.version}",
                cast(list[FieldError], exc.errors),
            ) from None
        return case

    def _store_call(self, call: Callable[[], T]) -> T:
        """Run a repository write, turning its errors into the service's."""
        try:
            return call()
        except RecordNotFound as exc:
            raise NotFound(str(exc)) from None
        except VersionConflict as exc:
            raise Conflict(str(exc), exc.current_version) from None


T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe least-recently-used map (values are immutable or never mutated)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _check_page(limit: int, offset: int, *, max_limit: int = 200) -> None:
    problems = []
    if not 1 <= limit <= max_limit:
        problems.append(field_error("limit", f"must be from 1 to {max_limit}", "range"))
    if not 0 <= offset <= MAX_OFFSET:
        problems.append(field_error("offset", f"must be from 0 to {MAX_OFFSET}", "range"))
    if problems:
        raise InvalidInput(problems)


def _head(loc: str) -> str:
    """``symptoms[2].date`` -> ``symptoms[2]`` (the case entry an error is about)."""
    match = _LOC_HEAD.match(loc)
    return match["head"] if match else loc


def _indexed(errors: Sequence[FieldError], index: int, count: int) -> list[FieldError]:
    """Errors about one item of a batch, located on that item when there are several."""
    if count == 1:
        return list(errors)
    return [
        field_error(f"[{index}]" + (f".{e['loc']}" if e["loc"] else ""), e["msg"], e["type"])
        for e in errors
    ]


def _kind_of(data: R) -> RecordKind[R]:
    kind = KIND_OF_INPUT.get(type(data))
    if kind is None:
        raise TypeError(f"not a record input: {type(data).__name__}")
    return cast(RecordKind[R], kind)


def _localise(
    error: dict[str, str],
    sources: dict[str, tuple[str, str]],
    written: tuple[str, str],
    today: dt.date,
) -> FieldError:
    """A case-level error as the writer should see it: on the field they just wrote, if it is
    theirs; otherwise on the stored record that conflicts with it."""
    loc, msg, type_ = error["loc"], error["msg"], error["type"]
    match = _LOC_HEAD.match(loc)
    head, rest = (match["head"], match["rest"] or "") if match else (loc, "")
    if head == "jurisdiction":
        head, rest = "patient", "jurisdiction"
    source = sources.get(head)
    if type_ == "birth_after_as_of":
        msg = f"the birth date is in the future (today is {today.isoformat()})"
    if source == written:
        default = "code" if written[0] == "causes" else ""
        return field_error(rest or default, msg, type_)
    if source is None:
        return field_error(loc, msg, type_)
    if written[0] == "demographics" and type_ == "before_birth":
        return field_error("birth_date", f"{source[0]} record {source[1]}: {msg}", type_)
    return field_error(f"{source[0]}[{source[1]}]" + (f".{rest}" if rest else ""), msg, type_)


def _demographics_columns(data: PatientIn) -> dict[str, Any]:
    return {
        "display_name": data.display_name,
        "sex": data.sex,
        "birth_date": data.birth_date,
        "jurisdiction": data.jurisdiction,
        "deceased_date": data.deceased_date,
        "note": data.note,
    }


def _patient_out(patient: models.Patient, demo: models.Demographics) -> PatientOut:
    return PatientOut(
        id=patient.id,
        clinic_id=patient.clinic_id,
        version=demo.version,
        display_name=demo.display_name,
        sex=demo.sex,
        birth_date=demo.birth_date,
        jurisdiction=demo.jurisdiction,
        deceased_date=demo.deceased_date,
        note=demo.note,
        recorded_at=demo.recorded_at,
    )


EARLIEST_AS_OF = dt.date(1900, 1, 1)
LATEST_AS_OF = dt.date(2999, 12, 31)


def check_as_of(day: dt.date) -> dt.date:
    """An evaluation date the date arithmetic can carry: schedules run years past ``as_of``, and
    ``date.max`` is 9999-12-31, so a date near it once overflowed into a 500 (issue 13)."""
    if not EARLIEST_AS_OF <= day <= LATEST_AS_OF:
        raise InvalidInput(
            [
                field_error(
                    "as_of",
                    f"{day.isoformat()} is outside {EARLIEST_AS_OF.isoformat()}"
                    f"..{LATEST_AS_OF.isoformat()}",
                    "date_out_of_range",
                )
            ]
        )
    return day


def _audit_out(entry: models.AuditEntry) -> AuditOut:
    return AuditOut(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        actor_user_id=entry.actor_user_id,
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        patient_id=entry.patient_id,
        before_version_id=entry.before_row_id,
        after_version_id=entry.after_row_id,
        detail=entry.detail,
    )


def _worklist_row(
    record: PatientRecord, assessment: Assessment, day: dt.date, horizon: dt.date
) -> WorklistRow:
    window = assessment.next_dose
    overdue = window is not None and day > window.overdue_after
    worst = min(
        (f.severity for f in assessment.findings),
        key=lambda s: SEVERITY_RANK.get(s, len(SEVERITY_RANK)),
        default=None,
    )
    return WorklistRow(
        patient_id=record.patient.id,
        display_name=record.demographics.display_name,
        clinic_id=record.patient.clinic_id,
        phase=assessment.phase,
        deficiency=assessment.deficiency,
        worst_severity=worst,
        findings=[
            WorklistFinding(code=f.code, severity=f.severity, message=f.message)
            for f in assessment.findings
        ],
        next_dose_due=None if window is None else window.due,
        overdue_after=None if window is None else window.overdue_after,
        days_overdue=(day - window.overdue_after).days if overdue and window else None,
        monitoring_due=[
            MonitoringDue(item=m.item, due=m.due, reason=m.reason)
            for m in assessment.monitoring
            if m.due <= horizon
        ],
    )


def _sort_key(sort: str) -> Callable[[WorklistRow], tuple[Any, ...]]:
    far = dt.date.max
    if sort == "name":
        return lambda r: (r.display_name, r.patient_id)
    if sort == "next_dose_due":
        return lambda r: (r.next_dose_due or far, r.display_name, r.patient_id)
    if sort == "patient_id":
        return lambda r: (r.patient_id,)
    return lambda r: (
        SEVERITY_RANK.get(r.worst_severity or "", len(SEVERITY_RANK)),
        -(r.days_overdue or 0),
        min((m.due for m in r.monitoring_due), default=far),
        r.display_name,
        r.patient_id,
    )
