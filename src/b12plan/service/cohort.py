"""The records store as population tables, so the population rules can screen a clinic's patients.

Each patient's current record takes the path one patient's assessment takes (``load_records`` →
``stored_case``), then ``cohort_tables`` converts units once: the worklist then
reads exactly what the API and the web app show. Entered-in-error versions are left out, as
everywhere. Patients are read a chunk at a time and streamed to Parquet, so memory stays flat.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from b12plan.contract import CaseError
from b12plan.core.knowledge import Knowledge
from b12plan.population.convert import CohortMember, TableWriter, cohort_tables
from b12plan.population.tables import TABLES
from b12plan.service.records import load_records, stored_case
from b12plan.store import models
from b12plan.store.database import Database


class CohortExportError(Exception):
    """A stored record that no longer reads as a valid case (e.g. after a knowledge change)."""


class UnknownClinic(CohortExportError):
    """The clinic asked for does not exist."""


@dataclass(frozen=True)
class CohortExport:
    patients: int  # written to the tables
    without_demographics: int  # patients with no current demographics: not assessable, left out
    rows: dict[str, int]


def export_cohort(
    db: Database,
    knowledge: Knowledge,
    out: Path,
    *,
    as_of: dt.date,
    clinic_id: str | None = None,
    chunk_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> CohortExport:
    """Write every stored patient (or one clinic's) to the population tables in ``out``.

    ``as_of`` chooses each patient's order in force, as an assessment on that day would; every
    record is written whatever its date, and a population run replays any ``--as-of``.
    ``progress`` is called with (patients read so far, patients in all).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    with db.reading() as session:
        query = select(models.Patient.id).order_by(models.Patient.id)
        if clinic_id is not None:
            query = query.where(models.Patient.clinic_id == clinic_id)
        ids = list(session.scalars(query))
        if clinic_id is not None and not ids:
            known = session.scalar(
                select(func.count()).select_from(models.Clinic).where(models.Clinic.id == clinic_id)
            )
            if not known:
                raise UnknownClinic(f"clinic {clinic_id!r} does not exist")
        # written beside ``out`` first: a failed export leaves any earlier tables as they were
        parent = out.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=parent))
        try:
            result = _write(session, knowledge, ids, as_of, partial, chunk_size, progress)
            out.mkdir(parents=True, exist_ok=True)
            for name in TABLES:  # all tables written: only now do they replace earlier ones
                os.replace(partial / f"{name}.parquet", out / f"{name}.parquet")
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return result


def _write(
    session: Session,
    knowledge: Knowledge,
    ids: list[str],
    as_of: dt.date,
    directory: Path,
    chunk_size: int,
    progress: Callable[[int, int], None] | None,
) -> CohortExport:
    written = missing = 0
    with TableWriter(directory) as writer:
        for start in range(0, max(len(ids), 1), chunk_size):
            chunk = ids[start : start + chunk_size]
            records = load_records(session, chunk)
            members = []
            for pid in chunk:
                record = records.get(pid)
                if record is None:
                    missing += 1
                    continue
                try:
                    case = stored_case(record, as_of, knowledge)
                except CaseError as exc:
                    detail = "; ".join(exc.lines())
                    raise CohortExportError(f"patient {pid}: {detail}") from None
                members.append(CohortMember(pid, case, clinic_id=record.patient.clinic_id))
            writer.write(cohort_tables(members, knowledge, first_key=written + 1))
            written += len(members)
            if progress is not None:
                progress(start + len(chunk), len(ids))
    return CohortExport(written, missing, writer.rows)
