"""A FHIR R4 Bundle (ours or an EHR's) to the contract case JSON.

Reading is deliberately two-sided. Records that are not about B12 therapy (an EHR sends every
Observation, Condition and order it has) are skipped quietly. Records that are about it must be
complete and unambiguous: a B12 result without a unit we know, a dose whose display unit and UCUM
code disagree, or a record of another patient is an error naming its path, never a guess.
Vocabulary checks that the contract already makes (codes, date order) are left to
``b12plan.caseio.parse_case``, and its errors are translated back to paths in the Bundle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from b12plan.caseio import CaseError, case_to_dict, parse_case
from b12plan.core.knowledge import Knowledge
from b12plan.fhir.codes import ATC, ICD10, ICD10_CM, LOINC, RXNORM, SNOMED, UCUM, CodeMap, Systems
from b12plan.fhir.outcome import (
    BUSINESS_RULE,
    CODE_INVALID,
    CONFLICT,
    NOT_SUPPORTED,
    REQUIRED,
    STRUCTURE,
    VALUE,
    BundleError,
    error,
)

Json = dict[str, Any]

BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset", "document")
"""Bundles that carry resources to read (not history, message or responses)."""

# Which statuses describe something that happened (or is ordered) and so belong in the case.
OBSERVATION_STATUSES = ("final", "amended", "corrected", "preliminary")
ADMINISTRATION_STATUSES = ("completed", "in-progress")
STATEMENT_STATUSES = ("active", "completed", "stopped", "on-hold")
CURRENT_ORDER_STATUSES = ("active", "on-hold")
PAST_ORDER_STATUSES = ("completed", "stopped")
DRAFT_ORDER_SKIP = ("entered-in-error", "cancelled")
_ORDER_SKIP = ("entered-in-error", "cancelled", "draft", "unknown")

PERIOD_DAYS = {"d": 1, "wk": 7, "a": 365}
MAX_INTERVAL_DAYS = 3660  # an input bound (no regimen is dosed once a decade), not a clinical rule
"""Calendar lengths of FHIR timing units; months depend on the jurisdiction (codes.toml)."""

_OBS_FIELDS = {
    "": "",
    "code": "code",
    "loinc": "code",
    "date": "effectiveDateTime",
    "value": "valueQuantity.value",
    "unit": "valueQuantity.unit",
    "reference_low": "referenceRange[0].low.value",
    "reference_high": "referenceRange[0].high.value",
}
_SYMPTOM_FIELDS = {
    "": "",
    "code": "code",
    "date": "effectiveDateTime",
    "status": "valueCodeableConcept",
}
_ADMIN_FIELDS = {
    "": "",
    "date": "effectiveDateTime",
    "product": "medicationCodeableConcept",
    "brand": "extension",
    "dose": "dosage.dose.value",
    "unit": "dosage.dose.unit",
    "route": "dosage.route",
    "given_by": "performer[0].actor",
    "site": "dosage.site",
}
_STATEMENT_FIELDS = {
    "": "",
    "code": "medicationCodeableConcept",
    "start": "effectivePeriod.start",
    "end": "effectivePeriod.end",
}
_EVENT_FIELDS = {"": "", "code": "event", "date": "date"}
_PATIENT_FIELDS = {"": "", "id": "identifier", "sex": "gender", "birth_date": "birthDate"}


def _rx_fields(k: int) -> dict[str, str]:
    d = f"dosageInstruction[{k}]"
    return {
        "": "",
        "product": "medicationCodeableConcept",
        "brand": "extension",
        "dose": f"{d}.doseAndRate[0].doseQuantity.value",
        "unit": f"{d}.doseAndRate[0].doseQuantity.unit",
        "route": f"{d}.route",
        "phase": f"{d}.extension",
        "interval_days": f"{d}.timing.repeat.period",
        "start": f"{d}.timing.repeat.boundsPeriod.start",
        "end": f"{d}.timing.repeat.boundsPeriod.end",
    }


# --- structure ---------------------------------------------------------------------------------


def validate_bundle(data: object) -> Json:
    """Check ``data`` is a valid FHIR R4 Bundle we read; return it as normalised FHIR JSON."""
    if not isinstance(data, dict):
        raise BundleError([error("", "expected a FHIR Bundle (a JSON object)", STRUCTURE)])
    if data.get("resourceType") != "Bundle":
        raise BundleError(
            [
                error(
                    "resourceType",
                    f"expected 'Bundle', got {data.get('resourceType')!r}",
                    STRUCTURE,
                )
            ]
        )
    problems = []
    entries = data.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            kind = resource.get("resourceType")
            if not isinstance(kind, str) or not _known_resource_type(kind):
                problems.append(
                    error(
                        f"entry[{i}].resource.resourceType",
                        f"unknown FHIR R4 resource type {kind!r}",
                        STRUCTURE,
                    )
                )
    if problems:
        raise BundleError(problems)
    try:
        model = Bundle.model_validate(data)
    except ValidationError as exc:
        raise BundleError(
            [
                error(_pydantic_path(e["loc"]), _pydantic_message(e["msg"], e["type"]), STRUCTURE)
                for e in exc.errors(include_url=False)
            ]
        ) from None
    except (KeyError, TypeError, ValueError) as exc:  # e.g. an unknown contained resource type
        raise BundleError([error("", f"not a valid FHIR R4 Bundle: {exc}", STRUCTURE)]) from None
    if model.type not in BUNDLE_TYPES:
        raise BundleError(
            [
                error(
                    "type",
                    f"a {model.type!r} Bundle carries no record to read"
                    f" (accepted: {', '.join(BUNDLE_TYPES)})",
                    NOT_SUPPORTED,
                )
            ]
        )
    dumped: Json = model.model_dump(mode="json", exclude_none=True)
    return dumped


def _known_resource_type(name: str) -> bool:
    try:
        get_fhir_model_class(name)
    except ValueError:
        return False
    return name not in ("Element", "BackboneElement", "Resource", "DomainResource")


def _pydantic_path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith(("function-", "json-or-python")) or "[" in part:
            continue  # validator wrapper names, not FHIR elements
        else:
            text += f".{part}" if text else part
    return text


def _pydantic_message(msg: str, type_: str) -> str:
    if type_ == "extra_forbidden":
        return "unknown element"
    return msg.removeprefix("Value error, ")


# --- reading -----------------------------------------------------------------------------------


@dataclass
class _Provenance:
    """Where a case record came from, to point the contract's errors back into the Bundle."""

    prefix: str  # "observations[2]"
    entry: int
    fields: dict[str, str]


@dataclass
class _Candidate:
    entry: int
    resource: Json
    product: str


@dataclass
class _Rx:
    value: Json
    fields: dict[str, str]


@dataclass
class _Reader:
    knowledge: Knowledge
    codes: CodeMap
    sys: Systems
    patient_id: str | None = None
    drafts: bool = False  # reading CDS Hooks draft orders: any status, start defaults to as_of
    as_of: date | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    provenance: list[_Provenance] = field(default_factory=list)
    by_reference: dict[str, Json] = field(default_factory=dict)
    patient_refs: set[str] = field(default_factory=set)
    patient_entry: int | None = None
    jurisdiction: str | None = None

    # --- errors and small readers ------------------------------------------------------------

    def err(self, i: int, path: str, msg: str, type_: str) -> None:
        base = f"entry[{i}].resource"
        self.errors.append(error(f"{base}.{path}" if path else base, msg, type_))

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

    def extension_value(self, element: Json, url: str, key: str) -> Any:
        for ext in element.get("extension", []):
            if ext.get("url") == url:
                return ext.get(key)
        return None

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

    def patient(self, entries: Sequence[Json]) -> Json | None:
        """The one Patient; a second one is an error (a record mixing patients is a hazard)."""
        found: Json | None = None
        for i, entry in enumerate(entries):
            r = entry.get("resource", {})
            if r.get("resourceType") != "Patient":
                continue
            if self.patient_entry is not None:
                self.err(
                    i,
                    "",
                    f"a second Patient (the first is entry[{self.patient_entry}]):"
                    " a Bundle holds one patient's record",
                    CONFLICT,
                )
                continue
            self.patient_entry, found = i, r
            if "fullUrl" in entry:
                self.patient_refs.update({entry["fullUrl"], _ref_key(entry["fullUrl"])})
            if "id" in r:
                if self.patient_id is not None and r["id"] != self.patient_id:
                    self.err(
                        i,
                        "id",
                        f"Patient {r['id']!r} is not the patient asked about ({self.patient_id!r})",
                        CONFLICT,
                    )
                self.patient_refs.add(f"Patient/{r['id']}")
        if self.patient_id is not None:
            self.patient_refs.add(f"Patient/{self.patient_id}")
        return found

    def owned(self, i: int, r: Json) -> bool:
        """The record names this Bundle's patient as its subject."""
        ref = r.get("subject", {}).get("reference")
        if not isinstance(ref, str):
            self.err(i, "subject", "required: every record must name its patient", REQUIRED)
            return False
        if not self.patient_refs:  # no Patient resource and no id given: all must agree
            self.patient_refs.update({ref, _ref_key(ref)})
        if ref in self.patient_refs or _ref_key(ref) in self.patient_refs:
            return True
        self.err(
            i,
            "subject.reference",
            f"refers to {ref!r}, not this record's patient"
            f" ({', '.join(sorted(self.patient_refs))})",
            CONFLICT,
        )
        return False

    def patient_dict(self, r: Json) -> Json:
        assert self.patient_entry is not None
        i = self.patient_entry
        self.provenance.append(_Provenance("patient", i, _PATIENT_FIELDS))
        self.provenance.append(_Provenance("jurisdiction", i, {"": "extension"}))
        out: Json = {}
        ident = next(
            (
                x.get("value")
                for x in r.get("identifier", [])
                if x.get("system") == self.sys.patient_id
            ),
            None,
        )
        if ident is not None:
            out["id"] = ident
        elif "id" in r:
            out["id"] = r["id"]
        if "gender" in r:
            out["sex"] = r["gender"]
        if "birthDate" in r:
            birth = self.date_of(i, r["birthDate"], "birthDate")
            if birth is not None:
                out["birth_date"] = birth
        self.jurisdiction = self.extension_value(r, self.sys.jurisdiction, "valueCode")
        return out

    # --- medications -------------------------------------------------------------------------

    def concept(self, r: Json) -> Json | None:
        """The medication as a CodeableConcept, following a reference to a Medication."""
        if "medicationCodeableConcept" in r:
            found: Json = r["medicationCodeableConcept"]
            return found
        ref = r.get("medicationReference", {})
        target = ref.get("reference")
        medication: Json | None = None
        if isinstance(target, str) and target.startswith("#"):
            medication = next(
                (c for c in r.get("contained", []) if c.get("id") == target[1:]), None
            )
        elif isinstance(target, str):
            medication = self.by_reference.get(target) or self.by_reference.get(_ref_key(target))
        if medication is not None and "code" in medication:
            code: Json = medication["code"]
            return code
        if "display" in ref:
            return {"text": ref["display"]}
        return None

    def product_of(self, concept: Json) -> str | None:
        """The formulary product: our coding, then ATC, RxNorm, then the product's name in text."""
        codings = concept.get("coding", [])
        for c in codings:
            if c.get("system") == self.sys.product and "code" in c:
                code: str = c["code"]
                return code
        products = self.knowledge.formulary.products
        for c in codings:
            code = c.get("code", "")
            if c.get("system") == ATC:
                for p in products:
                    if p.atc and code == p.atc:
                        return p.id
                for extra in self.codes.product_atc:
                    if code == extra.atc:
                        return extra.product
            if c.get("system") == RXNORM:
                for p in products:
                    if p.rxnorm and code == p.rxnorm:
                        return p.id
        text = " ".join([concept.get("text", "")] + [c.get("display", "") for c in codings]).lower()
        for p in products:
            if p.id in text:
                return p.id
        return None

    def medication_of(self, concept: Json) -> str | None:
        """A contract ``medications`` code: our coding, else the longest matching ATC prefix."""
        codings = concept.get("coding", [])
        for c in codings:
            if c.get("system") == self.sys.medication and "code" in c:
                code: str = c["code"]
                return code
        best: tuple[int, str] | None = None
        for c in codings:
            if c.get("system") != ATC:
                continue
            for e in self.codes.medication:
                if c.get("code", "").startswith(e.atc) and (best is None or len(e.atc) > best[0]):
                    best = (len(e.atc), e.medication)
        return None if best is None else best[1]

    def route(self, i: int, concept: Json | None, path: str) -> str | None:
        if concept is None:
            self.err(i, path, "required: the route (IM, SC, IV or oral)", REQUIRED)
            return None
        codings = concept.get("coding", [])
        for c in codings:
            if c.get("system") == self.sys.route and "code" in c:
                code: str = c["code"]
                return code
        for c in codings:
            if c.get("system") == SNOMED:
                for e in self.codes.route:
                    if c.get("code") == e.code:
                        return e.route
        text = concept.get("text", "").strip().lower()
        for e in self.codes.route:
            if text in (e.route.lower(), e.display.lower()):
                return e.route
        self.err(
            i,
            path,
            f"cannot read route {concept.get('text') or codings!r} as one of"
            f" {', '.join(e.route for e in self.codes.route)}",
            CODE_INVALID,
        )
        return None

    def dose(self, i: int, q: Json | None, path: str) -> tuple[float, str] | None:
        if q is None or "value" not in q:
            self.err(i, path, "required: the dose with its unit", REQUIRED)
            return None
        units = [u.symbol for u in self.knowledge.formulary.dose_units]
        unit = self.unit(i, q, units, path, "a dose")
        if unit is None:
            return None
        value: float = q["value"]
        return value, unit

    def interval_days(self, i: int, repeat: Json, path: str) -> int | None:
        """Days between doses from ``period``/``periodUnit``/``frequency`` (e.g. 3 a week -> 2)."""
        period, unit = repeat.get("period"), repeat.get("periodUnit")
        frequency = repeat.get("frequency", 1)
        if period is None or unit is None:
            self.err(i, path, "required: a repeat period and periodUnit (how often)", REQUIRED)
            return None
        if unit == "mo":
            per = self.codes.days_per_month.get(self.jurisdiction or "GB")
        else:
            per = PERIOD_DAYS.get(unit)
        if per is None:
            self.err(
                i,
                f"{path}.periodUnit",
                f"periodUnit {unit!r}: b12plan reads intervals of days, weeks, months or years",
                NOT_SUPPORTED,
            )
            return None
        span = float(period) * per / float(frequency) if float(frequency) > 0 else math.inf
        if not math.isfinite(span) or span > MAX_INTERVAL_DAYS:  # 1e308 years was a 500
            self.err(
                i,
                f"{path}.period",
                f"an interval of {period} {unit} is longer than {MAX_INTERVAL_DAYS} days",
                VALUE,
            )
            return None
        days: int = math.floor(span + 1e-9)
        if days < 1:
            self.err(
                i,
                f"{path}.period",
                f"more than one dose a day ({frequency} per {period} {unit}) is no B12 regimen",
                VALUE,
            )
            return None
        return days

    def brand(self, r: Json) -> str | None:
        value = self.extension_value(r, self.sys.brand, "valueString")
        return value if isinstance(value, str) else None

    def prescription(self, c: _Candidate) -> _Rx | None:
        """The order's current phase: its lowest-``sequence`` dosage not derived by b12plan."""
        i, r = c.entry, c.resource
        for ext in r.get("modifierExtension", []):
            self.err(
                i,
                "modifierExtension",
                f"unknown modifier extension {ext.get('url')!r}: the order cannot be read safely",
                NOT_SUPPORTED,
            )
            return None
        current: list[tuple[int, Json]] = []
        for k, d in enumerate(r.get("dosageInstruction", [])):
            urls = [m.get("url") for m in d.get("modifierExtension", [])]
            if self.sys.protocol_derived in urls:
                continue  # b12plan's own plan, written on export: not part of the order
            if urls:
                self.err(
                    i,
                    f"dosageInstruction[{k}].modifierExtension",
                    f"unknown modifier extension {urls[0]!r}: the dosage cannot be read safely",
                    NOT_SUPPORTED,
                )
                return None
            current.append((k, d))
        if not current:
            self.err(i, "dosageInstruction", "required: dose, route and timing", REQUIRED)
            return None
        k, d = min(current, key=lambda kd: (kd[1].get("sequence", 0), kd[0]))
        fields = _rx_fields(k)
        at = f"dosageInstruction[{k}]"
        dose_q = (d.get("doseAndRate") or [{}])[0].get("doseQuantity")
        dose = self.dose(i, dose_q, f"{at}.doseAndRate[0].doseQuantity")
        route = self.route(i, d.get("route"), f"{at}.route")
        repeat = d.get("timing", {}).get("repeat", {})
        interval = self.interval_days(i, repeat, f"{at}.timing.repeat")
        bounds = repeat.get("boundsPeriod", {})
        start: str | None = None
        if "start" in bounds:
            start = self.date_of(i, bounds["start"], f"{at}.timing.repeat.boundsPeriod.start")
        elif "authoredOn" in r:
            start = self.date_of(i, r["authoredOn"], "authoredOn")
            fields["start"] = "authoredOn"
        elif self.drafts and self.as_of is not None:
            start = self.as_of.isoformat()  # a draft order starts when it is signed
        else:
            self.err(
                i,
                f"{at}.timing.repeat.boundsPeriod.start",
                "required: when the order starts (or authoredOn)",
                REQUIRED,
            )
        if dose is None or route is None or interval is None or start is None:
            return None
        phase = self.extension_value(d, self.sys.phase, "valueCode")
        if phase is None:
            # Not written by b12plan: the interval decides (contract v1: a gap of
            # maintenance_gap_days or more is a maintenance interval, not loading).
            gap = self.knowledge.timing("maintenance_gap_days")
            phase = "maintenance" if interval >= gap else "loading"
        value: Json = {
            "product": c.product,
            "dose": dose[0],
            "unit": dose[1],
            "route": route,
            "phase": phase,
            "interval_days": interval,
            "start": start,
        }
        if "end" in bounds:
            end = self.date_of(i, bounds["end"], f"{at}.timing.repeat.boundsPeriod.end")
            if end is None:
                return None
            value["end"] = end
        brand = self.brand(r)
        if brand is not None:
            value["brand"] = brand
        return _Rx(value, fields)

    # --- the other records ---------------------------------------------------------------

    def observation(self, i: int, r: Json, out: Json) -> None:
        if r.get("status") not in OBSERVATION_STATUSES:
            return
        coding: list[Json] = r.get("code", {}).get("coding", [])
        symptom = next((c for c in coding if c.get("system") == self.sys.symptom), None)
        if symptom is not None:
            self.symptom(i, r, symptom, out)
            return
        ours = next((c for c in coding if c.get("system") == self.sys.analyte), None)
        loincs = [c for c in coding if c.get("system") == LOINC and "code" in c]
        rec: Json = {}
        if ours is not None:
            analyte_code = ours.get("code")
            rec["code"] = analyte_code
            chosen = next((c["code"] for c in loincs if c.get("userSelected")), None)
            if chosen is not None:
                rec["loinc"] = chosen
        else:
            known = [c for c in loincs if self.knowledge.analyte_by_loinc(c["code"]) is not None]
            if not known:
                return  # not a result b12plan uses
            rec["loinc"] = known[0]["code"]
            analyte = self.knowledge.analyte_by_loinc(known[0]["code"])
            analyte_code = None if analyte is None else analyte.code
        if "dataAbsentReason" in r:
            return  # ordered but no result (e.g. not performed)
        if not self.owned(i, r):
            return
        path, when = self.first_date(
            i,
            r,
            ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"),
            "a laboratory result",
        )
        q = r.get("valueQuantity")
        if q is None or "value" not in q:
            self.err(
                i, "valueQuantity", "required: a laboratory result needs a value and unit", REQUIRED
            )
            return
        units: Sequence[str] = ()
        if analyte_code is not None:
            known_codes = {a.code for a in self.knowledge.analytes}
            if analyte_code in known_codes:
                units = [u.symbol for u in self.knowledge.analyte(analyte_code).units]
        if units:
            unit = self.unit(i, q, units, "valueQuantity", str(analyte_code))
        else:  # unknown analyte: caseio names the code; pass the unit through unchanged
            unit = q.get("unit") or q.get("code")
        day = self.date_of(i, when, path) if path else None
        if unit is None or day is None:
            return
        rec.update({"date": day, "value": q["value"], "unit": unit})
        fields = dict(_OBS_FIELDS, date=path)
        for bound in ("low", "high"):
            rr = (r.get("referenceRange") or [{}])[0].get(bound)
            if rr is None or "value" not in rr:
                continue
            where = f"referenceRange[0].{bound}"
            bound_unit = self.unit(i, rr, units or [unit], where, str(analyte_code))
            if bound_unit is not None and self.codes.to_ucum(bound_unit) != self.codes.to_ucum(
                unit
            ):
                self.err(
                    i,
                    f"{where}.unit",
                    f"unit {bound_unit!r} differs from the result's unit {unit!r}",
                    VALUE,
                )
                return
            rec[f"reference_{bound}"] = rr["value"]
        n = len(out["observations"])
        out["observations"].append(rec)
        self.provenance.append(_Provenance(f"observations[{n}]", i, fields))

    def symptom(self, i: int, r: Json, coding: Json, out: Json) -> None:
        if not self.owned(i, r):
            return
        status = next(
            (
                c.get("code")
                for c in r.get("valueCodeableConcept", {}).get("coding", [])
                if c.get("system") == self.sys.symptom_status
            ),
            None,
        )
        if status is None:
            self.err(
                i,
                "valueCodeableConcept",
                "required: the symptom's status (present, worsening, improving, stable, resolved)",
                REQUIRED,
            )
            return
        path, when = self.first_date(
            i, r, ("effectiveDateTime", "effectivePeriod.start", "issued"), "a symptom report"
        )
        day = self.date_of(i, when, path) if path else None
        if day is None:
            return
        n = len(out["symptoms"])
        out["symptoms"].append({"code": coding.get("code"), "date": day, "status": status})
        self.provenance.append(_Provenance(f"symptoms[{n}]", i, dict(_SYMPTOM_FIELDS, date=path)))

    def condition(self, i: int, r: Json, out: Json) -> None:
        statuses = {c.get("code") for c in r.get("verificationStatus", {}).get("coding", [])}
        if statuses & {"entered-in-error", "refuted"}:
            return
        cause: str | None = None
        for c in r.get("code", {}).get("coding", []):
            if c.get("system") == self.sys.cause:
                cause = c.get("code")
                break
        if cause is None:
            for c in r.get("code", {}).get("coding", []):
                system = ICD10 if c.get("system") == ICD10_CM else c.get("system")
                hit = next(
                    (e for e in self.codes.cause if e.system == system and e.code == c.get("code")),
                    None,
                )
                if hit is not None:
                    cause = hit.cause
                    break
        if cause is None or not self.owned(i, r):
            return
        n = len(out["causes"])
        out["causes"].append(cause)
        self.provenance.append(_Provenance(f"causes[{n}]", i, {"": "code"}))

    def administration(self, i: int, r: Json, out: Json) -> None:
        if r.get("status") not in ADMINISTRATION_STATUSES:
            return
        concept = self.concept(r)
        product = None if concept is None else self.product_of(concept)
        if product is None or not self.owned(i, r):
            return
        path, when = self.first_date(
            i, r, ("effectiveDateTime", "effectivePeriod.start"), "an administration"
        )
        dosage = r.get("dosage")
        if dosage is None:
            self.err(i, "dosage", "required: the dose and route given", REQUIRED)
            return
        dose = self.dose(i, dosage.get("dose"), "dosage.dose")
        route = self.route(i, dosage.get("route"), "dosage.route")
        day = self.date_of(i, when, path) if path else None
        if dose is None or route is None or day is None:
            return
        rec: Json = {
            "date": day,
            "product": product,
            "dose": dose[0],
            "unit": dose[1],
            "route": route,
        }
        brand = self.brand(r)
        if brand is not None:
            rec["brand"] = brand
        given_by = self.given_by(r)
        if given_by is not None:
            rec["given_by"] = given_by
        site = dosage.get("site")
        if site is not None:
            text = site.get("text") or next(
                (c.get("display") or c.get("code") for c in site.get("coding", [])), None
            )
            if text:
                rec["site"] = text
        n = len(out["administrations"])
        out["administrations"].append(rec)
        self.provenance.append(
            _Provenance(f"administrations[{n}]", i, dict(_ADMIN_FIELDS, date=path))
        )

    def given_by(self, r: Json) -> str | None:
        """self (the patient), carer (a RelatedPerson) or clinic (a practitioner)."""
        for performer in r.get("performer", []):
            actor = performer.get("actor", {})
            kind = actor.get("type")
            ref = actor.get("reference")
            if kind is None and isinstance(ref, str):
                kind = _ref_key(ref).split("/")[0] if "/" in _ref_key(ref) else None
            if kind == "Patient" or (
                isinstance(ref, str)
                and (ref in self.patient_refs or _ref_key(ref) in self.patient_refs)
            ):
                return "self"
            if kind == "RelatedPerson":
                return "carer"
            if kind in ("Practitioner", "PractitionerRole", "Organization"):
                return "clinic"
        return None

    def statement(self, i: int, r: Json, out: Json) -> None:
        if r.get("status") not in STATEMENT_STATUSES:
            return
        concept = self.concept(r)
        code = None if concept is None else self.medication_of(concept)
        if code is None or not self.owned(i, r):
            return
        path, when = self.first_date(
            i, r, ("effectivePeriod.start", "effectiveDateTime", "dateAsserted"), "a medication"
        )
        start = self.date_of(i, when, path) if path else None
        if start is None:
            return
        self.add_medication(
            i,
            code,
            start,
            r.get("effectivePeriod", {}).get("end"),
            dict(_STATEMENT_FIELDS, start=path),
            out,
        )

    def add_medication(
        self, i: int, code: str, start: str, end: object, fields: dict[str, str], out: Json
    ) -> None:
        rec: Json = {"code": code, "start": start}
        if end is not None:
            end_day = self.date_of(i, end, fields["end"])
            if end_day is None:
                return
            rec["end"] = end_day
        n = len(out["medications"])
        out["medications"].append(rec)
        self.provenance.append(_Provenance(f"medications[{n}]", i, fields))

    def order_medication(self, i: int, r: Json, code: str, out: Json) -> None:
        """A non-B12 order that the contract lists (folic acid, metformin, ...)."""
        if not self.owned(i, r):
            return
        bounds = (
            (r.get("dosageInstruction") or [{}])[0]
            .get("timing", {})
            .get("repeat", {})
            .get("boundsPeriod", {})
        )
        fields = {
            "": "",
            "code": "medicationCodeableConcept",
            "end": "dosageInstruction[0].timing.repeat.boundsPeriod.end",
        }
        if "start" in bounds:
            when, fields["start"] = (
                bounds["start"],
                "dosageInstruction[0].timing.repeat.boundsPeriod.start",
            )
        elif "authoredOn" in r:
            when, fields["start"] = r["authoredOn"], "authoredOn"
        elif self.drafts and self.as_of is not None:
            when, fields["start"] = self.as_of.isoformat(), ""
        else:
            self.err(i, "authoredOn", "required: when the medication starts", REQUIRED)
            return
        start = self.date_of(i, when, fields["start"])
        if start is not None:
            self.add_medication(i, code, start, bounds.get("end"), fields, out)

    def adverse_event(self, i: int, r: Json, out: Json) -> None:
        if r.get("actuality") != "actual":
            return
        code = next(
            (
                c.get("code")
                for c in r.get("event", {}).get("coding", [])
                if c.get("system") == self.sys.adverse_event
            ),
            None,
        )
        if code is None or not self.owned(i, r):
            return
        path, when = self.first_date(i, r, ("date", "detected", "recordedDate"), "an adverse event")
        day = self.date_of(i, when, path) if path else None
        if day is None:
            return
        n = len(out["adverse_events"])
        out["adverse_events"].append({"code": code, "date": day})
        self.provenance.append(
            _Provenance(f"adverse_events[{n}]", i, dict(_EVENT_FIELDS, date=path))
        )

    # --- the whole Bundle --------------------------------------------------------------------

    def read(self, bundle: Json, as_of: date) -> Json:
        """The contract case dict (not yet validated by caseio)."""
        entries: list[Json] = bundle.get("entry", [])
        self.index(entries)
        patient = self.patient(entries)
        out: Json = {"schema_version": 1, "as_of": as_of.isoformat()}
        if patient is not None:
            details = self.patient_dict(patient)
            if details:
                out["patient"] = details
            if self.jurisdiction is not None:
                out["jurisdiction"] = self.jurisdiction
        for key in (
            "causes",
            "symptoms",
            "observations",
            "administrations",
            "medications",
            "adverse_events",
        ):
            out[key] = []
        orders: list[_Candidate] = []
        for i, entry in enumerate(entries):
            r = entry.get("resource")
            if not isinstance(r, dict):
                continue
            kind = r["resourceType"]
            if kind == "Observation":
                self.observation(i, r, out)
            elif kind == "Condition":
                self.condition(i, r, out)
            elif kind == "MedicationAdministration":
                self.administration(i, r, out)
            elif kind == "MedicationStatement":
                self.statement(i, r, out)
            elif kind == "AdverseEvent":
                self.adverse_event(i, r, out)
            elif kind == "MedicationRequest" and r.get("status") not in _ORDER_SKIP:
                concept = self.concept(r)
                if concept is None:
                    continue
                product = self.product_of(concept)
                if product is not None:
                    orders.append(_Candidate(i, r, product))
                    continue
                code = self.medication_of(concept)
                if code is not None:
                    self.order_medication(i, r, code, out)
            # Patient is read above; CarePlans are b12plan's own output and other resource
            # types carry nothing the case holds.
        self.choose_prescription(orders, out)
        return out

    def choose_prescription(self, orders: list[_Candidate], out: Json) -> None:
        """One current B12 order; without one, the latest ended order (so a stop is visible)."""
        current = [c for c in orders if c.resource.get("status") in CURRENT_ORDER_STATUSES]
        for extra in current[1:]:
            self.err(
                extra.entry,
                "status",
                f"a second current B12 order (the first is entry[{current[0].entry}]):"
                " a case holds one current prescription",
                CONFLICT,
            )
        chosen: tuple[_Candidate, _Rx] | None = None
        if current:
            if not self.owned(current[0].entry, current[0].resource):
                return
            rx = self.prescription(current[0])
            if rx is not None:
                chosen = (current[0], rx)
        else:
            past = []
            for c in orders:
                if c.resource.get("status") not in PAST_ORDER_STATUSES:
                    continue
                trial = _Reader(
                    self.knowledge, self.codes, self.sys, jurisdiction=self.jurisdiction
                )
                trial.patient_refs = set(self.patient_refs)
                if not trial.owned(c.entry, c.resource):
                    continue
                rx = trial.prescription(c)
                if rx is not None and not trial.errors and "end" in rx.value:
                    past.append((c, rx))
            if past:
                chosen = max(past, key=lambda cr: (cr[1].value["start"], cr[0].entry))
        if chosen is not None:
            out["prescription"] = chosen[1].value
            self.provenance.append(_Provenance("prescription", chosen[0].entry, chosen[1].fields))

    def translate(self, errors: Sequence[dict[str, str]]) -> list[dict[str, str]]:
        """caseio's ``observations[2].unit`` errors as ``entry[7].resource.valueQuantity.unit``."""
        out = []
        for e in errors:
            loc = e["loc"]
            best: _Provenance | None = None
            for p in self.provenance:
                if (loc == p.prefix or loc.startswith(p.prefix + ".")) and (
                    best is None or len(p.prefix) > len(best.prefix)
                ):
                    best = p
            type_ = e["type"]
            kind = (
                REQUIRED
                if type_ == "missing"
                else CODE_INVALID
                if type_.startswith("unknown_")
                else BUSINESS_RULE
            )
            if best is None:
                out.append(error(f"(case) {loc}" if loc else "", e["msg"], kind))
                continue
            rest = loc[len(best.prefix) + 1 :]
            sub = best.fields.get(rest, best.fields.get("", ""))
            base = f"entry[{best.entry}].resource"
            out.append(error(f"{base}.{sub}" if sub else base, e["msg"], kind))
        return out


def _ref_key(ref: str) -> str:
    """``https://ehr/fhir/Patient/1/_history/2`` -> ``Patient/1``; ``urn:uuid:...`` unchanged."""
    if ref.startswith("urn:"):
        return ref
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


def read_bundle(
    bundle: object,
    *,
    as_of: date,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    patient_id: str | None = None,
) -> Json:
    """Validate and read a Bundle into the canonical contract case (``case_to_dict`` form)."""
    data = validate_bundle(bundle)
    reader = _Reader(knowledge, codes, systems, patient_id=patient_id)
    mapped = reader.read(data, as_of)
    if reader.errors:
        raise BundleError(reader.errors)
    try:
        case = parse_case(mapped, knowledge)
    except CaseError as exc:
        raise BundleError(reader.translate(exc.errors)) from None
    return case_to_dict(case)


@dataclass(frozen=True)
class DraftOrder:
    """One draft order read from a CDS Hooks ``draftOrders`` Bundle.

    ``prescription`` (a B12 product) or ``medication`` (a contract medication such as folic
    acid) holds the contract record; ``fields`` maps the record's fields to FHIR paths.
    """

    entry: int
    resource: Json
    prescription: Json | None
    medication: Json | None
    fields: dict[str, str]


def read_draft_orders(
    bundle: object,
    *,
    as_of: date,
    jurisdiction: str,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    patient_id: str | None,
) -> list[DraftOrder]:
    """The MedicationRequests b12plan can check; unrelated orders are left out."""
    data = validate_bundle(bundle)
    reader = _Reader(
        knowledge,
        codes,
        systems,
        patient_id=patient_id,
        drafts=True,
        as_of=as_of,
        jurisdiction=jurisdiction,
    )
    entries: list[Json] = data.get("entry", [])
    reader.index(entries)
    reader.patient(entries)
    found: list[DraftOrder] = []
    for i, entry in enumerate(entries):
        r = entry.get("resource", {})
        if r.get("resourceType") != "MedicationRequest" or r.get("status") in DRAFT_ORDER_SKIP:
            continue
        concept = reader.concept(r)
        if concept is None:
            continue
        product = reader.product_of(concept)
        if product is not None:
            if not reader.owned(i, r):
                continue
            rx = reader.prescription(_Candidate(i, r, product))
            if rx is not None:
                found.append(DraftOrder(i, r, rx.value, None, rx.fields))
            continue
        code = reader.medication_of(concept)
        if code is not None:
            holder: Json = {"medications": []}
            reader.order_medication(i, r, code, holder)
            if holder["medications"]:
                fields = reader.provenance[-1].fields
                found.append(DraftOrder(i, r, None, holder["medications"][0], fields))
    if reader.errors:
        raise BundleError(reader.errors)
    return found
