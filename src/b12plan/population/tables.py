"""The table contract: the normalised tables every engine reads, and the worklist it writes.

One row per record, one table per record kind, keyed by ``patient_key``: an integer surrogate (a
database's primary key, or a row number), because engines join and sort integers several times
faster than text; ``patients`` maps it to the ``patient_id`` people use. Values are already in the
knowledge base's canonical units (``value``/``unit`` for results, ``dose_mcg`` for doses); the
figures as reported are kept beside them for provenance. Anything that can supply these columns
(Parquet files, PostgreSQL tables, or later views over ``b12plan.store``) can be monitored: the
SQL rules read nothing else. ``docs/population.md`` documents the same contract for people.
"""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped]

TABLES: dict[str, pa.Schema] = {
    "patients": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("patient_id", pa.string()),
            ("clinic_id", pa.string()),
            ("sex", pa.string()),
            ("birth_date", pa.date32()),
            ("jurisdiction", pa.string()),
            ("deceased_date", pa.date32()),
            # treatment before the first recorded dose (transferred in): since when, and
            # whether the loading course was completed then (contract v1.1 prior_treatment)
            ("prior_since", pa.date32()),
            ("prior_loading_completed", pa.bool_()),
        ]
    ),
    "causes": pa.schema([("patient_key", pa.int64()), ("cause", pa.string())]),
    "symptoms": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("event_date", pa.date32()),
            ("code", pa.string()),
            ("status", pa.string()),
            ("reporter", pa.string()),  # clinician | patient | carer
        ]
    ),
    "observations": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("event_date", pa.date32()),
            ("code", pa.string()),
            ("value", pa.float64()),
            ("unit", pa.string()),
            ("reference_low", pa.float64()),
            ("reference_high", pa.float64()),
            ("reported_value", pa.float64()),
            ("reported_unit", pa.string()),
            ("reported_reference_low", pa.float64()),
            ("reported_reference_high", pa.float64()),
        ]
    ),
    "administrations": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("event_date", pa.date32()),
            ("product", pa.string()),
            ("dose_mcg", pa.float64()),
            ("route", pa.string()),
            ("given_by", pa.string()),
            ("reported_dose", pa.float64()),
            ("reported_unit", pa.string()),
        ]
    ),
    "prescriptions": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("product", pa.string()),
            ("dose_mcg", pa.float64()),
            ("route", pa.string()),
            ("phase", pa.string()),
            ("interval_days", pa.int32()),
            ("start_date", pa.date32()),
            ("end_date", pa.date32()),
            ("reported_dose", pa.float64()),
            ("reported_unit", pa.string()),
        ]
    ),
    "medications": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("code", pa.string()),
            ("start_date", pa.date32()),
            ("end_date", pa.date32()),
        ]
    ),
    "adverse_events": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("event_date", pa.date32()),
            ("code", pa.string()),
        ]
    ),
    "decisions": pa.schema(
        [
            ("patient_key", pa.int64()),
            ("event_date", pa.date32()),
            ("code", pa.string()),  # neuro_loading_complete | rechallenge_cleared
            ("decided_by", pa.string()),  # who decided ("by" is an SQL keyword)
            ("reason", pa.string()),
        ]
    ),
}

# One row per (patient, finding). Evidence is typed, not JSON, so that three engines can be
# compared cell by cell: the date the finding hinges on, a day count, a value in canonical units,
# and a short note (e.g. the protocol or analyte).
WORKLIST_SCHEMA = pa.schema(
    [
        ("patient_id", pa.string()),
        ("clinic_id", pa.string()),
        ("code", pa.string()),
        ("severity", pa.string()),
        ("as_of", pa.date32()),
        ("evidence_date", pa.date32()),
        ("evidence_days", pa.int64()),
        ("evidence_value", pa.float64()),
        ("evidence_note", pa.string()),
    ]
)

# The booking list: one row per patient whose next dose falls due within the next N days (core's
# Assessment.next_dose), for a clinic to book appointments from.
DUE_SCHEMA = pa.schema(
    [
        ("patient_key", pa.int64()),
        ("patient_id", pa.string()),
        ("clinic_id", pa.string()),
        ("due", pa.date32()),
        ("earliest", pa.date32()),
        ("overdue_after", pa.date32()),
        ("phase", pa.string()),
        ("protocol_id", pa.string()),
    ]
)

SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "date32[day]": "DATE",
    "double": "DOUBLE",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "bool": "BOOLEAN",
}


def empty_tables() -> dict[str, pa.Table]:
    """Every table of the contract, with no rows (a cohort with nothing recorded yet)."""
    return {name: schema.empty_table() for name, schema in TABLES.items()}


def sql_type(field: pa.Field) -> str:
    """The DuckDB-dialect type for a contract column (transpiled like the rules)."""
    return SQL_TYPES[str(field.type)]
