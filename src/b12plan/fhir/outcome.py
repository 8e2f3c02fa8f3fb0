"""One error shape for FHIR input, one OperationOutcome builder, one status mapping.

An error is ``{"loc": "entry[3].resource.valueQuantity.unit", "msg": "...", "type": "value"}``:
``loc`` is a FHIRPath-style path inside the Bundle (``""`` for the document itself) and ``type``
is a FHIR ``issue-type`` code, so the OperationOutcome needs no second vocabulary. A warning
(something skipped on import, the record still read) has the same shape plus
``"severity": "warning"`` (or ``"information"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STRUCTURE = "structure"  # not a valid FHIR R4 Bundle at all -> 400
REQUIRED = "required"
VALUE = "value"
CODE_INVALID = "code-invalid"
CONFLICT = "conflict"  # e.g. two patients in one record
BUSINESS_RULE = "business-rule"  # the contract's own rules (end before start, ...)
NOT_SUPPORTED = "not-supported"
NOT_FOUND = "not-found"
INFORMATIONAL = "informational"
INCOMPLETE = "incomplete"  # e.g. a result without a value

WARNING = "warning"
INFORMATION = "information"


class BundleError(ValueError):
    """A Bundle b12plan cannot read; ``errors`` names each problem by its path in the Bundle."""

    def __init__(self, errors: Sequence[Mapping[str, str]]) -> None:
        self.errors: list[dict[str, str]] = [dict(e) for e in errors]
        super().__init__("\n".join(describe(e) for e in self.errors))

    @property
    def status(self) -> int:
        return http_status(self.errors)


def error(loc: str, msg: str, type_: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg, "type": type_}


def warning(loc: str, msg: str, type_: str, severity: str = WARNING) -> dict[str, str]:
    return {"loc": loc, "msg": msg, "type": type_, "severity": severity}


def describe(e: Mapping[str, str]) -> str:
    """``entry[3].resource.valueQuantity.unit: unknown unit 'pmol'``."""
    return f"{e['loc']}: {e['msg']}" if e["loc"] else e["msg"]


def http_status(errors: Sequence[Mapping[str, str]]) -> int:
    """FHIR REST: 400 when the body is not valid FHIR, 404 for a missing resource, 422 when it is
    valid FHIR that b12plan's rules refuse."""
    types = {e["type"] for e in errors}
    if STRUCTURE in types:
        return 400
    if types == {NOT_FOUND}:
        return 404
    return 422


def operation_outcome(
    errors: Sequence[Mapping[str, str]], *, root: str = "Bundle"
) -> dict[str, Any]:
    """The issues as an R4 OperationOutcome; ``expression`` is the FHIRPath from ``root``.

    Each issue's severity is its ``severity`` key, ``error`` when it has none."""
    issues: list[dict[str, Any]] = []
    for e in errors:
        issue: dict[str, Any] = {
            "severity": e.get("severity", "error"),
            "code": e["type"],
            "details": {"text": e["msg"]},
            "diagnostics": describe(e),
        }
        if e["loc"]:
            issue["expression"] = [f"{root}.{e['loc']}" if root else e["loc"]]
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}
