"""What every resource reader shares: the Bundle's index, its patient, errors and provenance.

Reading is deliberately two-sided. Records that are not about B12 therapy (an EHR sends every
Observation, Condition and order it has) are skipped quietly. Records that are about it must be
complete and unambiguous: a B12 result without a unit we know, a dose whose display unit and UCUM
code disagree, or a record of another patient is an error naming its path, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from b12plan.core.knowledge import Knowledge
from b12plan.fhir.codes import UCUM, CodeMap, Systems
from b12plan.fhir.outcome import CONFLICT, REQUIRED, VALUE, WARNING, error, warning

Json = dict[str, Any]


@dataclass
class Provenance:
    """Where a case record came from, to point the contract's errors back into the Bundle."""

    prefix: str  # "observations[2]"
    entry: int
    fields: dict[str, str]


@dataclass
class Context:
    """One reading of one Bundle: settings, what was found so far and what went wrong."""

    knowledge: Knowledge
    codes: CodeMap
    sys: Systems
    patient_id: str | None = None
    drafts: bool = False  # reading CDS Hooks draft orders: any status, start defaults to as_of
    as_of: date | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    provenance: list[Provenance] = field(default_factory=list)
    by_reference: dict[str, Json] = field(default_factory=dict)
    patient_refs: set[str] = field(default_factory=set)
    patient_entry: int | None = None
    jurisdiction: str | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    default_jurisdiction: str = "GB"
    deceased: str | bool | None = None  # Patient.deceased[x], kept for contract v1.1
    partial: bool = True  # an unreadable result is skipped with a warning, not an error

    def fork(self) -> Context:
        """A fresh context on the same patient, to try reading a record without its errors
        counting (an ended order that may not be the one chosen)."""
        trial = Context(
            self.knowledge,
            self.codes,
            self.sys,
            jurisdiction=self.jurisdiction,
            default_jurisdiction=self.default_jurisdiction,
        )
        trial.patient_refs = set(self.patient_refs)
        return trial

    # --- errors and small readers ------------------------------------------------------------

    def err(self, i: int, path: str, msg: str, type_: str) -> None:
        base = f"entry[{i}].resource"
        self.errors.append(error(f"{base}.{path}" if path else base, msg, type_))

    def warn(self, i: int, path: str, msg: str, type_: str, severity: str = WARNING) -> None:
        """Something left out of the case while the rest is read (nothing dropped silently)."""
        base = f"entry[{i}].resource"
        self.warnings.append(warning(f"{base}.{path}" if path else base, msg, type_, severity))

    def soften(self, mark: int, skipped: str) -> bool:
        """Errors since ``mark`` become warnings: one unreadable item is skipped, not the whole
        record (only in a ``partial`` reading). Returns whether anything was skipped."""
        if not self.partial:
            return False
        found = self.errors[mark:]
        del self.errors[mark:]
        for e in found:
            self.warnings.append(warning(e["loc"], f"{e['msg']}; {skipped}", e["type"]))
        return bool(found)

    def date_of(self, i: int, value: object, path: str) -> str | None:
        """A FHIR date or dateTime as the contract's ``YYYY-MM-DD`` (its local calendar date)."""
        if not isinstance(value, str) or len(value) < 10:
            self.err(i, path, f"needs a full date (YYYY-MM-DD), got {value!r}", VALUE)
            return None
        return value[:10]

    def first_date(self, i: int, r: Json, paths: Iterable[str], what: str) -> tuple[str, str]:
        for path in paths:
            value: Any = r
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                return path, value
        self.err(i, "", f"{what}: a date is needed ({' or '.join(paths)})", REQUIRED)
        return "", ""

    def unit(self, i: int, q: Json, accepted: Sequence[str], path: str, what: str) -> str | None:
        """The contract unit for a Quantity: the written ``unit`` if accepted, else the UCUM
        ``code``. Both present and disagreeing (mg vs ug) is an error, never a choice."""
        unit, code = q.get("unit"), q.get("code")
        from_unit: str | None = unit if unit in accepted else None
        from_code: str | None = None
        if q.get("system") == UCUM and code is not None:
            matches = [u for u in accepted if self.codes.to_ucum(u) == code]
            if matches:
                from_code = code if code in matches else matches[0]
        if from_unit is not None and from_code is not None:
            if self.codes.to_ucum(from_unit) != self.codes.to_ucum(from_code):
                self.err(
                    i,
                    f"{path}.code",
                    f"unit {unit!r} and UCUM code {code!r} disagree",
                    VALUE,
                )
                return None
            return from_unit
        if from_unit is not None or from_code is not None:
            return from_unit or from_code
        shown = unit if unit is not None else code
        self.err(
            i,
            f"{path}.unit" if unit is not None or code is None else f"{path}.code",
            f"unknown unit {shown!r} for {what} (accepted: {', '.join(accepted)})",
            VALUE,
        )
        return None

    # --- references and the patient ----------------------------------------------------------

    def index(self, entries: Sequence[Json]) -> None:
        for entry in entries:
            r = entry.get("resource")
            if not isinstance(r, dict):
                continue
            if "fullUrl" in entry:
                self.by_reference[entry["fullUrl"]] = r
            if "id" in r:
                self.by_reference[f"{r['resourceType']}/{r['id']}"] = r

    def resolve(self, reference: str) -> Json | None:
        return self.by_reference.get(reference) or self.by_reference.get(ref_key(reference))

    def is_patient(self, reference: str) -> bool:
        return reference in self.patient_refs or ref_key(reference) in self.patient_refs

    def owned(self, i: int, r: Json) -> bool:
        """The record names this Bundle's patient as its subject."""
        ref = r.get("subject", {}).get("reference")
        if not isinstance(ref, str):
            self.err(i, "subject", "required: every record must name its patient", REQUIRED)
            return False
        if not self.patient_refs:  # no Patient resource and no id given: all must agree
            self.patient_refs.update({ref, ref_key(ref)})
        if self.is_patient(ref):
            return True
        self.err(
            i,
            "subject.reference",
            f"refers to {ref!r}, not this record's patient"
            f" ({', '.join(sorted(self.patient_refs))})",
            CONFLICT,
        )
        return False


def extension_value(element: Json, url: str, key: str) -> Any:
    for ext in element.get("extension", []):
        if ext.get("url") == url:
            return ext.get(key)
    return None


def ref_key(ref: str) -> str:
    """``https://ehr/fhir/Patient/1/_history/2`` -> ``Patient/1``; ``urn:uuid:...`` unchanged."""
    if ref.startswith("urn:"):
        return ref
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


def shown(concept: Json) -> str:
    """A CodeableConcept as people read it: ``system|code 'display'`` or its text."""
    parts = [
        f"{c.get('system', '?')}|{c.get('code', '?')}"
        + (f" {c['display']!r}" if "display" in c else "")
        for c in concept.get("coding", [])
    ]
    text = concept.get("text")
    if text and text not in {c.get("display") for c in concept.get("coding", [])}:
        parts.append(repr(text))
    return ", ".join(parts) or "no code or text"
