"""Core ``Case`` (and optionally its ``Assessment``) to a FHIR R4 ``collection`` Bundle.

Every resource is built as plain JSON and the whole Bundle is validated with
``fhir.resources.R4B`` (entry by entry, ``by_entry``) before it leaves: a mapping bug fails here,
not in a receiving EHR.
Everything the contract case says is written in a form ``importing`` reads back unchanged; what
b12plan derives (the CarePlan, the protocol's next phase on the MedicationRequest) is marked as
derived and ignored on import.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import date
from typing import Any

from b12plan.contract import CaseError, case_to_dict
from b12plan.core.assessment import Assessment
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import (
    Administration,
    AdverseEvent,
    Case,
    Decision,
    Medication,
    Observation,
    Prescription,
    PriorTreatment,
    SymptomReport,
)
from b12plan.core.validity import not_for_deficiency_use
from b12plan.fhir.by_entry import validate_by_entry
from b12plan.fhir.codes import (
    ATC,
    LOINC,
    OBSERVATION_CATEGORY,
    RXNORM,
    SNOMED,
    STATEMENT_CATEGORY,
    UCUM,
    CodeMap,
    Systems,
)

Json = dict[str, Any]

PRIOR_TREATMENT_TEXT = "vitamin B12 injections before the records here"

PHASE_SEQUENCE = {"loading": 1, "maintenance": 2}
"""Loading is always ``sequence`` 1 and maintenance 2, whichever of them the order holds."""

# FHIR ``string`` must contain a character other than white space (plain spaces, tabs and line
# breaks aside): text made only of other white space (no-break space, U+0085 ...) has no FHIR form.
_FHIR_STRING = re.compile(r"[ \r\n\t\S]")

_FHIR_ID = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


def is_fhir_id(value: str) -> bool:
    """FHIR ``id``: 1-64 characters of letters, digits, ``-`` and ``.``."""
    return 0 < len(value) <= 64 and set(value) <= _FHIR_ID


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def every(days: int) -> str:
    """``daily`` or ``every 56 days``: how an interval reads in an order's text."""
    return "daily" if days == 1 else f"every {days} days"


class _Elements:
    """Data types shared by every resource: quantities, routes, medications, dosages."""

    def __init__(self, knowledge: Knowledge, codes: CodeMap, systems: Systems) -> None:
        self.k = knowledge
        self.codes = codes
        self.sys = systems

    def quantity(self, value: float, unit: str) -> Json:
        """The unit as written stays in ``unit``; ``code`` carries the UCUM code."""
        return {
            "value": _number(value),
            "unit": unit,
            "system": UCUM,
            "code": self.codes.to_ucum(unit),
        }

    def route(self, route: str) -> Json:
        coding: list[Json] = []
        entry = self.codes.route_entry(route)
        if entry is not None:
            coding.append({"system": SNOMED, "code": entry.code, "display": entry.display})
        coding.append({"system": self.sys.route, "code": route})
        return {"coding": coding, "text": route}

    def medication(self, product_id: str, dose: float, unit: str, route: str) -> Json:
        """Product coding plus ATC and RxNorm from the formulary.

        A dose that matches one of the product's other uses (hydroxocobalamin 5 g IV, the cyanide
        antidote) is coded as that use: the deficiency product's RxNorm code (1000 mcg/mL
        solution) would misname it.
        """
        coding: list[Json] = [{"system": self.sys.product, "code": product_id}]
        product = self.k.formulary.product(product_id)
        if product is not None:
            use = not_for_deficiency_use(
                product_id, route, self.k.formulary.to_mcg(dose, unit), self.k
            )
            other = next((n for n in product.not_for_deficiency if n.use == use), None)
            if other is not None:
                extra = next(
                    (
                        e
                        for e in self.codes.product_atc
                        if e.product == product_id and e.not_for_deficiency == other.id
                    ),
                    None,
                )
                if extra is not None:
                    coding.append({"system": ATC, "code": extra.atc, "display": extra.display})
            else:
                if product.atc:
                    coding.append({"system": ATC, "code": product.atc})
                if product.rxnorm:
                    coding.append({"system": RXNORM, "code": product.rxnorm})
        return {"coding": coding, "text": product_id}

    def brand(self, brand: str | None) -> list[Json]:
        return [] if brand is None else [{"url": self.sys.brand, "valueString": brand}]

    def dosage(
        self,
        *,
        phase: str,
        dose: float,
        unit: str,
        route: str,
        interval_days: int,
        start: date | None,
        end: date | None,
        text: str,
    ) -> Json:
        repeat: Json = {"frequency": 1, "period": interval_days, "periodUnit": "d"}
        if start is not None:
            bounds: Json = {"start": start.isoformat()}
            if end is not None:
                bounds["end"] = end.isoformat()
            repeat["boundsPeriod"] = bounds
        return {
            "extension": [{"url": self.sys.phase, "valueCode": phase}],
            "sequence": PHASE_SEQUENCE[phase],
            "text": text,
            "timing": {"repeat": repeat},
            "route": self.route(route),
            "doseAndRate": [{"doseQuantity": self.quantity(dose, unit)}],
        }


class _Writer(_Elements):
    """Builds one Bundle; holds the case and the patient reference."""

    def __init__(
        self, case: Case, knowledge: Knowledge, codes: CodeMap, systems: Systems, seed: str
    ) -> None:
        super().__init__(knowledge, codes, systems)
        self.case = case
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, systems.base)
        self.seed = seed
        self.entries: list[Json] = []
        self.patient_url = self._full_url("Patient", 0)

    def _full_url(self, kind: str, n: int) -> str:
        return f"urn:uuid:{uuid.uuid5(self.namespace, f'{self.seed}/{kind}/{n}')}"

    def add(self, resource: Json, kind: str, n: int) -> str:
        """Every entry gets a ``fullUrl`` (``urn:uuid``) and every resource an ``id``: the
        same UUID, except a Patient whose id is the server's (or, with none asked for, has
        none, so that an import does not take the UUID for the patient's id)."""
        url = self.patient_url if kind == "Patient" else self._full_url(kind, n)
        if kind != "Patient":
            resource = {"resourceType": resource["resourceType"], "id": _uuid_of(url), **resource}
        self.entries.append({"fullUrl": url, "resource": resource})
        return url

    @property
    def subject(self) -> Json:
        return {"reference": self.patient_url, "type": "Patient"}

    # --- resources -------------------------------------------------------------------------

    def patient(self, resource_id: str | None) -> None:
        p = self.case.patient
        resource: Json = {
            "resourceType": "Patient",
            "extension": [{"url": self.sys.jurisdiction, "valueCode": self.case.jurisdiction}],
        }
        if resource_id is not None:  # the server's id; a UUID when it is no FHIR id
            resource["id"] = resource_id if is_fhir_id(resource_id) else _uuid_of(self.patient_url)
        if p.id is not None:
            resource["identifier"] = [{"system": self.sys.patient_id, "value": p.id}]
        if p.sex is not None:
            resource["gender"] = p.sex
        if p.birth_date is not None:
            resource["birthDate"] = p.birth_date.isoformat()
        if p.deceased_date is not None:
            resource["deceasedDateTime"] = p.deceased_date.isoformat()
        self.add(resource, "Patient", 0)

    def condition(self, n: int, cause: str) -> str:
        label = self.k.cause(cause).label
        coding: list[Json] = [{"system": self.sys.cause, "code": cause, "display": label}]
        coding.extend(
            {"system": e.system, "code": e.code, "display": e.display}
            for e in self.codes.cause
            if e.cause == cause and not e.import_only
        )
        return self.add(
            {
                "resourceType": "Condition",
                "code": {"coding": coding, "text": label},
                "subject": self.subject,
            },
            "Condition",
            n,
        )

    def observation(self, n: int, o: Observation) -> None:
        analyte = self.k.analyte(o.code)
        coding: list[Json] = [{"system": self.sys.analyte, "code": o.code, "display": analyte.name}]
        if o.loinc is not None:  # given in the case: marked as chosen, so import keeps it
            coding.append({"system": LOINC, "code": o.loinc, "userSelected": True})
        else:
            derived = self.codes.loinc_for(o.code, o.unit)
            if derived is not None:
                coding.append({"system": LOINC, "code": derived})
        resource: Json = {
            "resourceType": "Observation",
            "status": "final",
            "category": [_category("laboratory", "Laboratory")],
            "code": {"coding": coding, "text": analyte.name},
            "subject": self.subject,
            "effectiveDateTime": o.date.isoformat(),
            "valueQuantity": self.quantity(o.value, o.unit),
        }
        if o.reference_low is not None or o.reference_high is not None:
            bounds: Json = {}
            if o.reference_low is not None:
                bounds["low"] = self.quantity(o.reference_low, o.unit)
            if o.reference_high is not None:
                bounds["high"] = self.quantity(o.reference_high, o.unit)
            resource["referenceRange"] = [bounds]
        self.add(resource, "Observation", n)

    def symptom(self, n: int, s: SymptomReport) -> None:
        label = self.k.symptom(s.code).label
        coding: list[Json] = [{"system": self.sys.symptom, "code": s.code, "display": label}]
        snomed = self.codes.symptom_entry(s.code)
        if snomed is not None:  # for receivers that know no b12plan CodeSystem
            coding.append({"system": SNOMED, "code": snomed.code, "display": snomed.display})
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [_category("survey", "Survey")],
                "code": {"coding": coding, "text": label},
                "subject": self.subject,
                "effectiveDateTime": s.date.isoformat(),
                "performer": [self._reporter(s.reporter)],
                "valueCodeableConcept": {
                    "coding": [{"system": self.sys.symptom_status, "code": s.status}],
                    "text": s.status,
                },
            },
            "Symptom",
            n,
        )

    def _reporter(self, reporter: str) -> Json:
        """Who assessed the symptom (ADR 0057), always written: an EHR must not take a
        patient's or carer's report for a clinician's (a patient's ``resolved`` never ends
        neurological loading)."""
        if reporter == "patient":
            return {"reference": self.patient_url, "type": "Patient", "display": "patient"}
        if reporter == "carer":
            return {"type": "RelatedPerson", "display": "carer"}
        return {"type": "PractitionerRole", "display": "clinician"}

    def decision(self, n: int, d: Decision) -> None:
        """A clinician's recorded decision as a final Observation (ADR 0057): normative, so
        every server accepts it and it is searchable by patient, code and date."""
        self.add(
            {
                "resourceType": "Observation",
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": self.sys.observation_category,
                                "code": "clinical-decision",
                                "display": "Clinical decision",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": self.sys.decision, "code": d.code}],
                    "text": d.code,
                },
                "subject": self.subject,
                "effectiveDateTime": d.date.isoformat(),
                "performer": [{"type": "Practitioner", "display": d.by}],
                "note": [{"text": d.reason}],
            },
            "Decision",
            n,
        )

    def medication_request(self, rx: Prescription, assessment: Assessment | None) -> None:
        amount = f"{_number(rx.dose)} {rx.unit} {rx.route}"
        dosages = [
            self.dosage(
                phase=rx.phase,
                dose=rx.dose,
                unit=rx.unit,
                route=rx.route,
                interval_days=rx.interval_days,
                start=rx.start,
                end=rx.end,
                text=f"{rx.phase.capitalize()}: {amount} {every(rx.interval_days)}",
            )
        ]
        following = self._following_maintenance(rx, assessment)
        if following is not None:
            dosages.append(following)
        ended = rx.end is not None and rx.end <= self.case.as_of
        resource: Json = {
            "resourceType": "MedicationRequest",
            "status": "completed" if ended else "active",
            "intent": "order",
            "medicationCodeableConcept": self.medication(rx.product, rx.dose, rx.unit, rx.route),
            "subject": self.subject,
            "authoredOn": rx.start.isoformat(),
            "dosageInstruction": dosages,
        }
        if rx.brand is not None:
            resource["extension"] = self.brand(rx.brand)
        self.add(resource, "MedicationRequest", 0)

    def _following_maintenance(
        self, rx: Prescription, assessment: Assessment | None
    ) -> Json | None:
        """A loading order's maintenance phase, as the protocol gives it (sequence 2).

        Written only when the protocol's regimen is the ordered product, strength and route, and
        flagged with a modifier extension: it is b12plan's plan, not part of the recorded order,
        and a receiver that does not understand the flag must not read it as ordered. A
        maintenance order gets no invented loading phase: loading is history (administrations).
        """
        if rx.phase != "loading" or assessment is None or assessment.regimen is None:
            return None
        reg = assessment.regimen
        to_mcg = self.k.formulary.to_mcg
        if (reg.product, reg.route) != (rx.product, rx.route) or to_mcg(
            reg.dose, reg.unit
        ) != to_mcg(rx.dose, rx.unit):
            return None
        days = reg.maintenance_interval_days
        dosage = self.dosage(
            phase="maintenance",
            dose=rx.dose,
            unit=rx.unit,
            route=rx.route,
            interval_days=days,
            start=None,
            end=None,
            text=(
                f"Then maintenance: {_number(rx.dose)} {rx.unit} {rx.route} {every(days)}"
                f" (protocol {reg.protocol_id}; b12plan's plan, not part of the recorded order)"
            ),
        )
        dosage["modifierExtension"] = [
            {"url": self.sys.protocol_derived, "valueString": reg.protocol_id}
        ]
        return dosage

    def administration(self, n: int, a: Administration) -> None:
        dosage: Json = {"route": self.route(a.route), "dose": self.quantity(a.dose, a.unit)}
        if a.site is not None:
            dosage = {"site": {"text": a.site}, **dosage}
        resource: Json = {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "medicationCodeableConcept": self.medication(a.product, a.dose, a.unit, a.route),
            "subject": self.subject,
            "effectiveDateTime": a.date.isoformat(),
            "dosage": dosage,
        }
        if a.given_by is not None:
            resource["performer"] = [{"actor": self._performer(a.given_by)}]
        if a.brand is not None:
            resource["extension"] = self.brand(a.brand)
        self.add(resource, "MedicationAdministration", n)

    def _performer(self, given_by: str) -> Json:
        """self: the patient; carer: a RelatedPerson; clinic: a PractitionerRole (no ids)."""
        if given_by == "self":
            return {"reference": self.patient_url, "type": "Patient", "display": "self"}
        if given_by == "carer":
            return {"type": "RelatedPerson", "display": "carer"}
        return {"type": "PractitionerRole", "display": "clinic"}

    def statement(self, n: int, m: Medication) -> None:
        label = next(v.label for v in self.k.medications if v.code == m.code)
        coding: list[Json] = [{"system": self.sys.medication, "code": m.code, "display": label}]
        entry = self.codes.medication_entry(m.code)
        if entry is not None:
            coding.append({"system": ATC, "code": entry.atc, "display": entry.display})
        period: Json = {"start": m.start.isoformat()}
        if m.end is not None:
            period["end"] = m.end.isoformat()
        ended = m.end is not None and m.end <= self.case.as_of
        self.add(
            {
                "resourceType": "MedicationStatement",
                "status": "completed" if ended else "active",
                "medicationCodeableConcept": {"coding": coding, "text": label},
                "subject": self.subject,
                "effectivePeriod": period,
            },
            "MedicationStatement",
            n,
        )

    def prior_treatment(self, prior: PriorTreatment) -> None:
        """B12 injections before the records here (ADR 0057); the extension marks the statement
        as this, so an EHR's own B12 statement is never read as ``prior_treatment``."""
        # ATC B03BA (vitamin B12), the group codes.toml gives oral B12: the code lives there.
        atc = self.codes.medication_entry("oral_b12")
        coding = [] if atc is None else [{"system": ATC, "code": atc.atc, "display": atc.display}]
        self.add(
            {
                "resourceType": "MedicationStatement",
                "extension": [
                    {"url": self.sys.loading_completed, "valueBoolean": prior.loading_completed}
                ],
                "status": "active",
                "category": {
                    "coding": [
                        {"system": STATEMENT_CATEGORY, "code": "community", "display": "Community"}
                    ]
                },
                "medicationCodeableConcept": {
                    "coding": coding,
                    "text": PRIOR_TREATMENT_TEXT,
                },
                "subject": self.subject,
                "effectivePeriod": {"start": prior.since.isoformat()},
            },
            "PriorTreatment",
            0,
        )

    def adverse_event(self, n: int, e: AdverseEvent) -> None:
        label = self.k.adverse_event(e.code).label
        self.add(
            {
                "resourceType": "AdverseEvent",
                "actuality": "actual",
                "event": {
                    "coding": [
                        {"system": self.sys.adverse_event, "code": e.code, "display": label}
                    ],
                    "text": label,
                },
                "subject": self.subject,
                "date": e.date.isoformat(),
            },
            "AdverseEvent",
            n,
        )

    def care_plan(self, assessment: Assessment, conditions: list[str]) -> None:
        """The planned doses and monitoring (export only: import ignores CarePlans)."""
        if not assessment.schedule and not assessment.monitoring:
            return
        reg = assessment.regimen
        activities: list[Json] = []
        for s in assessment.schedule:
            detail: Json = {
                "kind": "MedicationRequest",
                "status": "scheduled",
                "description": f"{s.phase.capitalize()} dose {_number(s.dose)} {s.unit}",
                "scheduledTiming": {"event": [s.date.isoformat()]},
                "quantity": self.quantity(s.dose, s.unit),
            }
            if reg is not None:
                detail["productCodeableConcept"] = self.medication(
                    reg.product, s.dose, s.unit, reg.route
                )
            activities.append({"detail": detail})
        for m in assessment.monitoring:
            activities.append(
                {
                    "detail": {
                        "kind": "ServiceRequest",
                        "code": {
                            "coding": [{"system": self.sys.monitoring, "code": m.item}],
                            "text": m.item,
                        },
                        "status": "scheduled",
                        "description": m.reason,
                        "scheduledPeriod": {"start": m.due.isoformat()},
                    }
                }
            )
        resource: Json = {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "title": "Vitamin B12 treatment plan"
            + ("" if reg is None else f" ({reg.protocol_id})"),
            "subject": self.subject,
            "created": assessment.as_of.isoformat(),
            "activity": activities,
        }
        nd = assessment.next_dose
        if nd is not None:
            resource["description"] = (
                f"Next dose due {nd.due.isoformat()} (earliest {nd.earliest.isoformat()},"
                f" overdue after {nd.overdue_after.isoformat()}); phase {assessment.phase};"
                f" knowledge {assessment.knowledge_version}."
            )
        if conditions:
            resource["addresses"] = [{"reference": url} for url in conditions]
        self.add(resource, "CarePlan", 0)


def _uuid_of(url: str) -> str:
    return url.removeprefix("urn:uuid:")


def _category(code: str, display: str) -> Json:
    return {"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}


def write_bundle(
    case: Case,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    *,
    assessment: Assessment | None = None,
    bundle_id: str | None = None,
    patient_resource_id: str | None = None,
) -> Json:
    """The Bundle for ``case``; deterministic (entry ids are name-based UUIDs of the content)."""
    _check_texts(case)
    canonical = json.dumps(case_to_dict(case), sort_keys=True, ensure_ascii=False)
    seed = hashlib.sha256(f"{bundle_id or ''}\n{canonical}".encode()).hexdigest()
    w = _Writer(case, knowledge, codes, systems, seed)
    w.patient(patient_resource_id)
    conditions = [w.condition(n, c) for n, c in enumerate(case.causes)]
    for n, o in enumerate(case.observations):
        w.observation(n, o)
    for n, s in enumerate(case.symptoms):
        w.symptom(n, s)
    for n, d in enumerate(case.decisions):
        w.decision(n, d)
    if case.prescription is not None:
        w.medication_request(case.prescription, assessment)
    for n, a in enumerate(case.administrations):
        w.administration(n, a)
    for n, m in enumerate(case.medications):
        w.statement(n, m)
    if case.prior_treatment is not None:
        w.prior_treatment(case.prior_treatment)
    for n, e in enumerate(case.adverse_events):
        w.adverse_event(n, e)
    if assessment is not None:
        w.care_plan(assessment, conditions)
    bundle: Json = {"resourceType": "Bundle"}
    if bundle_id is not None:
        bundle["id"] = bundle_id
    bundle.update({"type": "collection", "entry": w.entries})
    validate_by_entry(bundle, _nothing)  # a mapping bug fails here, with the FHIR path
    return bundle


def _nothing(entry: object) -> None:
    """Keeps nothing of a validated entry: the check is all that is wanted."""


def _check_texts(case: Case) -> None:
    """Free text FHIR cannot carry is refused by field, before any resource is built."""
    texts: list[tuple[str, str | None]] = [("patient.id", case.patient.id)]
    for n, a in enumerate(case.administrations):
        texts += [(f"administrations[{n}].brand", a.brand), (f"administrations[{n}].site", a.site)]
    if case.prescription is not None:
        texts.append(("prescription.brand", case.prescription.brand))
    for n, d in enumerate(case.decisions):
        texts += [(f"decisions[{n}].by", d.by), (f"decisions[{n}].reason", d.reason)]
    problems = [
        {
            "loc": loc,
            "msg": f"{value!r} is only white space of a kind FHIR strings cannot carry",
            "type": "fhir_string",
        }
        for loc, value in texts
        if value is not None and not _FHIR_STRING.search(value)
    ]
    if problems:
        raise CaseError(problems)


def protocol_order(
    draft: Json,
    knowledge: Knowledge,
    codes: CodeMap,
    systems: Systems,
    *,
    product: str,
    dose: float,
    unit: str,
    route: str,
    phase: str,
    interval_days: int,
    protocol_id: str,
) -> Json:
    """``draft`` (a MedicationRequest) rewritten to a protocol's regimen, for a CDS suggestion.

    Identity, subject, status and intent stay the draft's; medication and dosage are replaced,
    keeping the draft's start date if it had one.
    """
    e = _Elements(knowledge, codes, systems)
    start: date | None = None
    for old in draft.get("dosageInstruction", []):
        bounds = old.get("timing", {}).get("repeat", {}).get("boundsPeriod", {})
        if isinstance(bounds.get("start"), str) and len(bounds["start"]) >= 10:
            start = date.fromisoformat(bounds["start"][:10])
            break
    order = {
        k: v
        for k, v in draft.items()
        if k not in ("medicationReference", "medicationCodeableConcept", "dosageInstruction")
    }
    order["medicationCodeableConcept"] = e.medication(product, dose, unit, route)
    order["dosageInstruction"] = [
        e.dosage(
            phase=phase,
            dose=dose,
            unit=unit,
            route=route,
            interval_days=interval_days,
            start=start,
            end=None,
            text=(
                f"{phase.capitalize()}: {_number(dose)} {unit} {route} {every(interval_days)}"
                f" (protocol {protocol_id})"
            ),
        )
    ]
    return order
