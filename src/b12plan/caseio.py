"""The contract case JSON under its old name: everything here is ``b12plan.contract``'s.

Kept so code written against ``b12plan.caseio`` (the FHIR adapter, the population converter,
scripts) keeps working; new code imports ``b12plan.contract``.
"""

from b12plan.contract import (
    DEFAULT_JURISDICTION,
    SCHEMA_VERSION,
    CaseError,
    case_to_dict,
    load_json,
    parse_case,
    parse_case_json,
    parse_iso_date,
)

__all__ = [
    "DEFAULT_JURISDICTION",
    "SCHEMA_VERSION",
    "CaseError",
    "case_to_dict",
    "load_json",
    "parse_case",
    "parse_case_json",
    "parse_iso_date",
]
