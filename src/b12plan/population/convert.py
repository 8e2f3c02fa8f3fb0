"""Cases to the normalised tables: the bridge between one patient's case and a cohort.

Values are converted to canonical units here, once, with the knowledge base's factors, so the SQL
rules compare like with like whatever unit each laboratory reported in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

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
from b12plan.population.tables import TABLES


@dataclass(frozen=True)
class CohortMember:
    """One case in a cohort: the id it is filed under and, optionally, its clinic."""

    patient_id: str
    case: Case
    clinic_id: str | None = None


def case_rows(
    member: CohortMember, key: int, knowledge: Knowledge, *, shift_days: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """The rows one case contributes to each table, under the integer ``key``.

    ``shift_days`` moves every date by the same amount: rules only compare dates with each other
    and with ``as_of``, so cases evaluated on different dates can share one population run.
    """
    case, pid = member.case, key

    def d(value: date | None) -> date | None:
        return None if value is None else value + timedelta(days=shift_days)

    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    p = case.patient
    prior = case.prior_treatment
    rows["patients"].append(
        {
            "patient_key": pid,
            "patient_id": member.patient_id,
            "clinic_id": member.clinic_id,
            "sex": p.sex,
            "birth_date": d(p.birth_date),
            "jurisdiction": case.jurisdiction,
            "deceased_date": d(p.deceased_date),
            "prior_since": None if prior is None else d(prior.since),
            "prior_loading_completed": None if prior is None else prior.loading_completed,
        }
    )
    rows["causes"].extend({"patient_key": pid, "cause": c} for c in case.causes)
    rows["symptoms"].extend(
        {
            "patient_key": pid,
            "event_date": d(s.date),
            "code": s.code,
            "status": s.status,
            "reporter": s.reporter,
        }
        for s in case.symptoms
    )
    for o in case.observations:
        analyte = knowledge.analyte(o.code)
        rows["observations"].append(
            {
                "patient_key": pid,
                "event_date": d(o.date),
                "code": o.code,
                "value": analyte.to_canonical(o.value, o.unit),
                "unit": analyte.canonical_unit,
                "reference_low": _canonical(analyte.to_canonical, o.reference_low, o.unit),
                "reference_high": _canonical(analyte.to_canonical, o.reference_high, o.unit),
                "reported_value": o.value,
                "reported_unit": o.unit,
                "reported_reference_low": o.reference_low,
                "reported_reference_high": o.reference_high,
            }
        )
    to_mcg = knowledge.formulary.to_mcg
    rows["administrations"].extend(
        {
            "patient_key": pid,
            "event_date": d(a.date),
            "product": a.product,
            "dose_mcg": to_mcg(a.dose, a.unit),
            "route": a.route,
            "given_by": a.given_by,
            "reported_dose": a.dose,
            "reported_unit": a.unit,
        }
        for a in case.administrations
    )
    rx = case.prescription
    if rx is not None:
        rows["prescriptions"].append(
            {
                "patient_key": pid,
                "product": rx.product,
                "dose_mcg": to_mcg(rx.dose, rx.unit),
                "route": rx.route,
                "phase": rx.phase,
                "interval_days": rx.interval_days,
                "start_date": d(rx.start),
                "end_date": d(rx.end),
                "reported_dose": rx.dose,
                "reported_unit": rx.unit,
            }
        )
    rows["medications"].extend(
        {"patient_key": pid, "code": m.code, "start_date": d(m.start), "end_date": d(m.end)}
        for m in case.medications
    )
    rows["adverse_events"].extend(
        {"patient_key": pid, "event_date": d(e.date), "code": e.code} for e in case.adverse_events
    )
    rows["decisions"].extend(
        {
            "patient_key": pid,
            "event_date": d(x.date),
            "code": x.code,
            "decided_by": x.by,
            "reason": x.reason,
        }
        for x in case.decisions
    )
    return rows


def cohort_tables(
    members: Iterable[CohortMember],
    knowledge: Knowledge,
    *,
    shift_to: date | None = None,
    first_key: int = 1,
) -> dict[str, pa.Table]:
    """Arrow tables for a cohort of cases; patients are keyed ``first_key``, ``first_key + 1``...

    With ``shift_to``, each case's dates move so that its own ``as_of`` lands on ``shift_to``:
    one run on ``shift_to`` then evaluates every case as of its own date.
    """
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    seen: set[str] = set()
    for key, member in enumerate(members, start=first_key):
        if member.patient_id in seen:
            raise ValueError(f"patient_id {member.patient_id!r} appears twice in the cohort")
        seen.add(member.patient_id)
        shift = 0 if shift_to is None else (shift_to - member.case.as_of).days
        for name, rows in case_rows(member, key, knowledge, shift_days=shift).items():
            out[name].extend(rows)
    return {name: pa.Table.from_pylist(rows, schema=TABLES[name]) for name, rows in out.items()}


def cases_from_tables(tables: dict[str, pa.Table], as_of: date) -> Iterator[CohortMember]:
    """The cases a set of tables describes, one per patient, evaluated as of ``as_of``.

    The reverse of ``cohort_tables``, so that any patient on a worklist can be handed to
    ``b12plan.core.evaluate`` for the full assessment. Results and doses are given as reported
    (thresholds may be per reported unit, and plausibility is judged in it).
    """
    by_patient: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for name in TABLES:
        if name == "patients":
            continue
        for row in tables[name].to_pylist():
            by_patient.setdefault(row["patient_key"], {}).setdefault(name, []).append(row)
    for p in tables["patients"].to_pylist():
        rec = by_patient.get(p["patient_key"], {})
        rxs = sorted(rec.get("prescriptions", []), key=lambda r: r["start_date"])
        rx = rxs[-1] if rxs else None
        yield CohortMember(
            patient_id=p["patient_id"],
            clinic_id=p["clinic_id"],
            case=Case(
                as_of=as_of,
                jurisdiction=p["jurisdiction"],
                patient=Patient(
                    id=p["patient_id"],
                    sex=p["sex"],
                    birth_date=p["birth_date"],
                    deceased_date=p["deceased_date"],
                ),
                causes=tuple(r["cause"] for r in rec.get("causes", [])),
                symptoms=tuple(
                    SymptomReport(r["event_date"], r["code"], r["status"], r["reporter"])
                    for r in rec.get("symptoms", [])
                ),
                observations=tuple(
                    Observation(
                        r["event_date"],
                        r["code"],
                        r["reported_value"],
                        r["reported_unit"],
                        r["reported_reference_low"],
                        r["reported_reference_high"],
                    )
                    for r in rec.get("observations", [])
                ),
                administrations=tuple(
                    Administration(
                        r["event_date"],
                        r["product"],
                        r["reported_dose"],
                        r["reported_unit"],
                        r["route"],
                        given_by=r["given_by"],
                    )
                    for r in rec.get("administrations", [])
                ),
                prescription=None
                if rx is None
                else Prescription(
                    rx["product"],
                    rx["reported_dose"],
                    rx["reported_unit"],
                    rx["route"],
                    rx["phase"],
                    rx["interval_days"],
                    rx["start_date"],
                    rx["end_date"],
                ),
                medications=tuple(
                    Medication(r["start_date"], r["code"], r["end_date"])
                    for r in rec.get("medications", [])
                ),
                adverse_events=tuple(
                    AdverseEvent(r["event_date"], r["code"]) for r in rec.get("adverse_events", [])
                ),
                decisions=tuple(
                    Decision(r["event_date"], r["code"], r["decided_by"], r["reason"])
                    for r in rec.get("decisions", [])
                ),
                prior_treatment=None
                if p["prior_since"] is None
                else PriorTreatment(p["prior_since"], bool(p["prior_loading_completed"])),
            ),
        )


class TableWriter:
    """Streams the contract's tables to ``<name>.parquet`` in a folder, one batch at a time.

    The layout every engine reads; batches become row groups, so a cohort of any size is written
    with the memory of one batch.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.rows = dict.fromkeys(TABLES, 0)
        self._writers = {
            name: pq.ParquetWriter(directory / f"{name}.parquet", schema, compression="zstd")
            for name, schema in TABLES.items()
        }

    def write(self, tables: dict[str, pa.Table]) -> None:
        """Append a batch to each table given (any of the contract's tables)."""
        for name, table in tables.items():
            cast = table.cast(TABLES[name])
            self._writers[name].write_table(cast)
            self.rows[name] += cast.num_rows

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def bytes_on_disk(self) -> int:
        return sum((self.directory / f"{name}.parquet").stat().st_size for name in TABLES)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def write_tables(tables: dict[str, pa.Table], directory: Path) -> None:
    """One Parquet file per table, named after it: the layout every engine reads."""
    with TableWriter(directory) as writer:
        writer.write(tables)


def _canonical(convert: Any, value: float | None, unit: str) -> float | None:
    return None if value is None else float(convert(value, unit))
