"""The contract (v1.1): each record kind's fields (``records``), the case document's shape read
into core types and written back (``case``), and the one shape of a field error (``errors``).

Every entry point reads and writes cases through this package (CLI, REST API, web app, CDS
Hooks, FHIR import), so each accepts and refuses the same documents and names a bad field the
same way.
"""

from b12plan.contract.case import (
    DEFAULT_JURISDICTION,
    SCHEMA_VERSION,
    CaseError,
    case_to_dict,
    load_json,
    parse_case,
    parse_case_json,
    parse_iso_date,
)
from b12plan.contract.errors import FieldError, field_error, field_errors, format_loc

__all__ = [
    "DEFAULT_JURISDICTION",
    "SCHEMA_VERSION",
    "CaseError",
    "FieldError",
    "case_to_dict",
    "field_error",
    "field_errors",
    "format_loc",
    "load_json",
    "parse_case",
    "parse_case_json",
    "parse_iso_date",
]
