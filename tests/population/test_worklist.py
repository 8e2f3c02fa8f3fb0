"""The worklist file and its summary."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from b12plan.population.tables import WORKLIST_SCHEMA
from b12plan.population.worklist import (
    WorklistError,
    read_worklist,
    summarise,
    write_worklist,
)

D = date(2026, 3, 1)
ROWS = [
    ("p1", "c1", "FOLATE_WITHOUT_B12", "critical", D, D, 3, None, "confirmed"),
    ("p1", "c1", "NO_PRETREATMENT_TEST", "warning", D, D, None, None, None),
    ("p2", "c1", "NO_PRETREATMENT_TEST", "warning", D, D, None, None, None),
    ("p3", None, "POST_INJECTION_SAMPLE", "info", D, D, 40, 812.5, "b12_total"),
]


def _table() -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(WORKLIST_SCHEMA.names, r, strict=True)) for r in ROWS], schema=WORKLIST_SCHEMA
    )


def test_summary_counts_patients_per_code_and_findings_per_clinic() -> None:
    s = summarise(_table())
    assert (s.patients, s.findings) == (3, 4)
    assert [(c.code, c.patients) for c in s.codes] == [
        ("FOLATE_WITHOUT_B12", 1),
        ("NO_PRETREATMENT_TEST", 2),
        ("POST_INJECTION_SAMPLE", 1),
    ]
    by_clinic = {c.clinic_id: c for c in s.clinics}
    assert (by_clinic["c1"].patients, by_clinic["c1"].critical, by_clinic["c1"].warning) == (
        2,
        1,
        2,
    )
    assert by_clinic["(none)"].info == 1
    assert s.clinics[0].clinic_id == "c1"  # most critical first


@pytest.mark.parametrize("name", ["w.parquet", "w.csv"])
def test_parquet_and_csv_read_back_unchanged(tmp_path: Path, name: str) -> None:
    write_worklist(_table(), tmp_path / name)
    assert read_worklist(tmp_path / name).equals(_table())


def test_other_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WorklistError, match="--out"):
        write_worklist(_table(), tmp_path / "w.xlsx")
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(WorklistError, match="not a b12plan worklist"):
        read_worklist(tmp_path / "junk.csv")
