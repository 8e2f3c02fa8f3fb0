"""The worklist as a file and as counts: written once, read back, summarised per code and clinic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from b12plan.core.assessment import SEVERITY_ORDER
from b12plan.population.tables import WORKLIST_SCHEMA

FORMATS = (".parquet", ".csv")


class WorklistError(ValueError):
    """The worklist path or file is unusable; the message names the option."""


def _format(path: Path, option: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise WorklistError(f"{option}: {path} must end in .parquet or .csv")
    return suffix


def write_worklist(table: pa.Table, path: Path, schema: pa.Schema = WORKLIST_SCHEMA) -> None:
    """Parquet or CSV, chosen by the file's suffix (``schema``: the booking list's, for one)."""
    suffix = _format(path, "--out")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(table.cast(schema), path)
    else:
        pacsv.write_csv(table.cast(schema), path)


def read_worklist(path: Path) -> pa.Table:
    suffix = _format(path, "WORKLIST")
    if not path.is_file():
        raise WorklistError(f"WORKLIST: {path} does not exist")
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
        else:
            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types=WORKLIST_SCHEMA, strings_can_be_null=True
                ),
            )
        return table.select(WORKLIST_SCHEMA.names).cast(WORKLIST_SCHEMA)
    except (pa.ArrowInvalid, KeyError) as exc:
        raise WorklistError(f"WORKLIST: {path} is not a b12plan worklist ({exc})") from exc


@dataclass(frozen=True)
class CodeCount:
    code: str
    severity: str
    patients: int


@dataclass(frozen=True)
class ClinicCount:
    clinic_id: str
    patients: int
    critical: int
    warning: int
    info: int


@dataclass(frozen=True)
class Summary:
    patients: int
    findings: int
    codes: tuple[CodeCount, ...]  # most serious first, then most frequent
    clinics: tuple[ClinicCount, ...]  # most critical findings first


def summarise(table: pa.Table) -> Summary:
    """Counts per code (patients flagged) and per clinic (patients, findings by severity)."""
    by_code = table.group_by(["code", "severity"]).aggregate([("patient_id", "count_distinct")])
    codes = sorted(
        (
            CodeCount(r["code"], r["severity"], r["patient_id_count_distinct"])
            for r in by_code.to_pylist()
        ),
        key=lambda c: (SEVERITY_ORDER.get(c.severity, 9), -c.patients, c.code),
    )
    clinic = pc.fill_null(table["clinic_id"], "(none)")
    with_clinic = table.set_column(table.schema.get_field_index("clinic_id"), "clinic_id", clinic)
    patients = with_clinic.group_by("clinic_id").aggregate([("patient_id", "count_distinct")])
    severities = with_clinic.group_by(["clinic_id", "severity"]).aggregate(
        [("patient_id", "count")]
    )
    counts: dict[str, dict[str, int]] = {}
    for r in severities.to_pylist():
        counts.setdefault(r["clinic_id"], {})[r["severity"]] = r["patient_id_count"]
    clinics = sorted(
        (
            ClinicCount(
                r["clinic_id"],
                r["patient_id_count_distinct"],
                counts[r["clinic_id"]].get("critical", 0),
                counts[r["clinic_id"]].get("warning", 0),
                counts[r["clinic_id"]].get("info", 0),
            )
            for r in patients.to_pylist()
        ),
        key=lambda c: (-c.critical, -c.warning, -c.patients, c.clinic_id),
    )
    return Summary(
        patients=pc.count_distinct(table["patient_id"]).as_py() if table.num_rows else 0,
        findings=table.num_rows,
        codes=tuple(codes),
        clinics=tuple(clinics),
    )
