"""The two CDS services: ``patient-view`` (review the record) and ``order-sign`` (check a draft).

Everything clinical comes from ``b12plan.core.evaluate``; this module only chooses which
findings a hook shows and turns them into cards. An EHR's record (prefetch or its FHIR server)
is read by ``b12plan.fhir.import_bundle`` into a ``Case``; b12plan's own store hands over its
``Case``. Either way the contract parses the record once, and the hook works on that ``Case``
(draft orders are added to it as core records, never through JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from b12plan.cds_hooks.cards import (
    HOLD_SUMMARY,
    Card,
    IdFactory,
    data_problem_card,
    finding_to_card,
    next_dose_card,
    oral_order_card,
)
from b12plan.cds_hooks.data import (
    DataUnavailable,
    FhirClientFactory,
    PatientRecord,
    gather,
)
from b12plan.cds_hooks.discovery import ServiceSpec, discovery, prefetch_templates, service
from b12plan.cds_hooks.request import HookCall, RequestError, parse_call
from b12plan.contract import CaseError
from b12plan.core import Assessment, evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Case, Prescription
from b12plan.fhir import (
    BundleError,
    DraftOrder,
    draft_orders,
    drafts_to_check,
    every,
    import_bundle,
    order_for_regimen,
)
from b12plan.fhir.outcome import NOT_FOUND, STRUCTURE, error

Json = dict[str, Any]
LoadCase = Callable[[str], Case | None]
"""The store's case for a patient id; ``None`` when there is none, ``contract.CaseError`` when
the stored record is not a valid case."""
LoadCaseAs = Callable[[str, Any], Case | None]


@dataclass(frozen=True)
class Reply:
    """An HTTP status and its JSON body (cards, or an error list for an OperationOutcome)."""

    status: int
    body: Json | None = None
    errors: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class CdsServices:
    load_case: LoadCase
    knowledge: Knowledge
    clock: Callable[[], date]
    id_factory: IdFactory
    fhir_client_factory: FhirClientFactory
    fhir_servers: Collection[str] | None = None
    default_jurisdiction: str = "GB"
    """For an EHR record that says neither by b12plan's extension nor by the patient's address
    (the composition root passes ``B12PLAN_DEFAULT_JURISDICTION``, as for FHIR imports)."""

    def discovery(self) -> Json:
        return discovery(self.knowledge)

    def call(self, service_id: str, body: object) -> Reply:
        spec = service(service_id)
        if spec is None:
            return Reply(404, errors=(error("", f"no CDS service {service_id!r}", NOT_FOUND),))
        try:
            call = parse_call(body, spec)
        except RequestError as exc:
            return Reply(400, errors=tuple(exc.errors))
        as_of = self.clock()
        if spec.hook == "order-sign":
            return self._order_sign(spec, call, as_of)
        return self._patient_view(spec, call, as_of)

    # --- the record -----------------------------------------------------------------------

    def _record(self, call: HookCall) -> PatientRecord:
        servers = None
        if self.fhir_servers is not None:
            servers = {s.rstrip("/") for s in self.fhir_servers}
        return gather(
            call,
            prefetch_templates(self.knowledge),
            load_case=self.load_case,
            fhir_client_factory=self.fhir_client_factory,
            fhir_servers=servers,
        )

    def _case(self, record: PatientRecord, call: HookCall, as_of: date) -> Case:
        """The record as known on ``as_of``; ``BundleError`` (naming prefetch keys or queries)
        when it cannot be read. A FHIR record is read strictly (a result that cannot be read is
        an error, not a warning nobody sees); the store's ``Case`` is used as it is."""
        if record.case is not None:
            return record.case.known_on(as_of)
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": list(record.entries)}
        try:
            imported = import_bundle(
                bundle,
                as_of=as_of,
                knowledge=self.knowledge,
                patient_id=call.patient_id,
                default_jurisdiction=self.default_jurisdiction,
                partial=False,
            )
        except BundleError as exc:
            raise BundleError([_at_source(e, record.sources) for e in exc.errors]) from None
        return imported.case.known_on(as_of)

    def _assess(self, case: Case, as_of: date) -> Assessment:
        return evaluate(case, self.knowledge, as_of=as_of)

    def _problem(self, errors: list[dict[str, str]], what: str) -> Reply:
        card = data_problem_card(errors, what=what, id_factory=self.id_factory)
        return Reply(200, {"cards": [card]})

    # --- patient-view -----------------------------------------------------------------------

    def _patient_case(self, call: HookCall, as_of: date) -> Case | Reply:
        """The patient's record as a case on ``as_of``, or the reply that says why there is none
        (412 when it cannot be fetched; a card when it cannot be read)."""
        try:
            record = self._record(call)
        except DataUnavailable as exc:
            return Reply(412, errors=(error("", str(exc), "processing"),))
        except CaseError as exc:  # the store's record fails validation
            return self._problem(exc.errors, "this patient's record")
        try:
            return self._case(record, call, as_of)
        except (BundleError, CaseError) as exc:
            return self._problem(exc.errors, "this patient's record")

    def _patient_view(self, spec: ServiceSpec, call: HookCall, as_of: date) -> Reply:
        case = self._patient_case(call, as_of)
        if isinstance(case, Reply):
            return case
        assessment = self._assess(case, as_of)
        return Reply(200, {"cards": self.patient_view_cards(spec, case, assessment)})

    def patient_view_cards(
        self, spec: ServiceSpec, case: Case, assessment: Assessment
    ) -> list[Card]:
        """Every warning and critical finding; a few informational ones; then the next dose."""
        treated = bool(case.administrations) or case.prescription is not None
        cards: list[Card] = []
        info = 0
        for finding in assessment.findings:
            if finding.severity == "info":
                if info >= spec.info_cards_max:
                    continue
                if finding.code in spec.info_only_when_treated and not treated:
                    continue
                info += 1
            cards.append(
                finding_to_card(finding, knowledge=self.knowledge, id_factory=self.id_factory)
            )
        if (
            assessment.phase in ("loading", "maintenance")
            and assessment.regimen is not None
            and assessment.next_dose is not None
        ):
            cards.append(
                next_dose_card(assessment, knowledge=self.knowledge, id_factory=self.id_factory)
            )
        return cards

    # --- order-sign -------------------------------------------------------------------------

    def _order_sign(self, spec: ServiceSpec, call: HookCall, as_of: date) -> Reply:
        drafts_bundle = call.context["draftOrders"]
        try:  # before the record is fetched: does any order concern b12plan at all?
            relevant = drafts_to_check(
                drafts_bundle, as_of=as_of, patient_id=call.patient_id, knowledge=self.knowledge
            )
        except BundleError as exc:
            if any(e["type"] == STRUCTURE for e in exc.errors):
                return Reply(400, errors=tuple(_in_drafts(exc.errors)))
            relevant = True  # an order concerns b12plan but cannot be read: reported below
        if not relevant:
            return Reply(200, {"cards": []})
        case = self._patient_case(call, as_of)
        if isinstance(case, Reply):
            return case
        try:
            drafts = draft_orders(
                drafts_bundle,
                as_of=as_of,
                record=case,
                patient_id=call.patient_id,
                knowledge=self.knowledge,
            )
        except BundleError as exc:
            return self._problem(_in_drafts(exc.errors), "the draft order")
        return Reply(200, {"cards": self.order_sign_cards(spec, case, drafts, as_of)})

    def order_sign_cards(
        self, spec: ServiceSpec, case: Case, drafts: list[DraftOrder], as_of: date
    ) -> list[Card]:
        """Cards for what the draft orders cause.

        Each B12 draft is evaluated as the patient's prescription (with any listed medication
        drafts, e.g. folic acid, added). A finding is the order's when the same patient with the
        protocol's regimen ordered instead would not have it (with no protocol: when the record
        without the drafts does not); ``always_codes`` are shown whenever present.
        """
        medications = tuple(d.medication for d in drafts if d.medication is not None)
        orders = [d for d in drafts if d.prescription is not None]
        base = replace(case, medications=case.medications + medications)
        variants: list[tuple[DraftOrder | None, Case]] = [
            (d, replace(base, prescription=d.prescription)) for d in orders
        ] or [(None, base)]
        cards: list[Card] = []
        seen: set[tuple[str, str]] = set()
        for draft, variant in variants:
            assessment = self._assess(variant, as_of)
            regimen = self._protocol_regimen(assessment)
            protocol_id = assessment.regimen.protocol_id if assessment.regimen else ""
            injections = self._injections_needed(draft, case, as_of)
            if injections is not None:  # an oral order where the protocol is injections
                protocol_id, regimen, oral_card = injections
                cards.append(oral_card)
            reference = case
            if draft is not None and draft.prescription is not None and regimen is not None:
                reference = replace(variant, prescription=_as_regimen(draft.prescription, regimen))
            expected = {(f.code, f.message) for f in self._assess(reference, as_of).findings}
            for finding in assessment.findings:
                key = (finding.code, finding.message)
                if finding.code not in spec.codes or key in seen:
                    continue
                if finding.code not in spec.always_codes and key in expected:
                    continue  # not the order's doing: the protocol regimen would have it too
                seen.add(key)
                summary = None
                if (
                    finding.code == "ALLERGIC_REACTION"
                    and assessment.injections_on_hold
                    and draft is not None
                    and _route(draft) != "oral"
                ):
                    summary = HOLD_SUMMARY
                suggestions = []
                if (
                    draft is not None
                    and regimen is not None
                    and finding.code in spec.suggest_protocol_regimen
                ):
                    suggestions.append(self._suggestion(draft, protocol_id, regimen))
                cards.append(
                    finding_to_card(
                        finding,
                        knowledge=self.knowledge,
                        id_factory=self.id_factory,
                        suggestions=suggestions,
                        summary=summary,
                    )
                )
        return cards

    def _injections_needed(
        self, draft: DraftOrder | None, case: Case, as_of: date
    ) -> tuple[str, Json, Card] | None:
        """For an oral draft where the record's own protocol is injections and tablets are no
        substitute (neurological symptoms, or a chronic malabsorptive cause, and no oral
        maintenance option): that injection regimen, and the critical card saying so."""
        if draft is None or _route(draft) != "oral":
            return None
        record = self._assess(case, as_of)
        reg = record.regimen
        if reg is None or reg.route == "oral" or "ORAL_MAINTENANCE_OPTION" in record.codes():
            return None
        reasons = []
        if record.neurological:
            reasons.append("neurological symptoms are recorded")
        if record.cause_chronic:
            reasons.append("the cause is chronic (absorption is impaired)")
        regimen = self._protocol_regimen(record)
        if not reasons or regimen is None:
            return None
        rx = draft.prescription
        assert rx is not None  # an oral draft is a B12 order
        card = oral_order_card(
            order=f"{rx.product} {_number(rx.dose)} {rx.unit}",
            protocol_id=reg.protocol_id,
            regimen=f"{reg.product} {_number(reg.dose)} {reg.unit} {reg.route}",
            reasons=reasons,
            id_factory=self.id_factory,
        )
        return reg.protocol_id, regimen, card

    def _protocol_regimen(self, assessment: Assessment) -> Json | None:
        """The order the protocol gives now: loading at the current stage's spacing while
        loading is incomplete, else maintenance at the assessed interval."""
        reg = assessment.regimen
        if reg is None:
            return None
        phase, interval = "maintenance", reg.maintenance_interval_days
        if assessment.phase in ("untreated", "loading") and not reg.loading.complete:
            stage = self.knowledge.protocol(reg.protocol_id).loading_stage_for_dose(
                reg.loading.doses_given + 1
            )
            if stage is not None:
                phase, interval = "loading", stage.window.due_interval_days
        return {
            "product": reg.product,
            "dose": _number(reg.dose),
            "unit": reg.unit,
            "route": reg.route,
            "phase": phase,
            "interval_days": interval,
        }

    def _suggestion(self, draft: DraftOrder, protocol_id: str, regimen: Json) -> Card:
        """Replace the draft with the protocol regimen (an update when the draft has an id)."""
        order = order_for_regimen(
            draft.resource,
            product=regimen["product"],
            dose=regimen["dose"],
            unit=regimen["unit"],
            route=regimen["route"],
            phase=regimen["phase"],
            interval_days=regimen["interval_days"],
            protocol_id=protocol_id,
            knowledge=self.knowledge,
        )
        described = (
            f"{regimen['product']} {regimen['dose']} {regimen['unit']} {regimen['route']}"
            f" {every(regimen['interval_days'])} ({regimen['phase']}, {protocol_id})"
        )
        if "id" in draft.resource:
            action: Card = {
                "type": "update",
                "description": f"Replace the draft order with {described}",
                "resource": order,
            }
        else:
            action = {"type": "create", "description": f"Order {described}", "resource": order}
        return {
            "label": f"Order {described}",
            "uuid": self.id_factory(),
            "isRecommended": True,
            "actions": [action],
        }


def _route(draft: DraftOrder) -> str | None:
    return None if draft.prescription is None else draft.prescription.route


def _as_regimen(rx: Prescription, regimen: Json) -> Prescription:
    """The draft order with the protocol's product, dose, route, phase and interval instead."""
    return replace(
        rx,
        product=regimen["product"],
        dose=regimen["dose"],
        unit=regimen["unit"],
        route=regimen["route"],
        phase=regimen["phase"],
        interval_days=regimen["interval_days"],
    )


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _at_source(e: dict[str, str], sources: tuple[str, ...]) -> dict[str, str]:
    """``entry[7].resource.x`` of the merged record as ``prefetch.observations.entry[2]...``."""
    loc = e["loc"]
    if loc.startswith("entry["):
        index, _, rest = loc[len("entry[") :].partition("]")
        if index.isdigit() and int(index) < len(sources):
            return {**e, "loc": sources[int(index)] + rest}
    return e


def _in_drafts(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    return [
        {**e, "loc": f"context.draftOrders.{e['loc']}" if e["loc"] else "context.draftOrders"}
        for e in errors
    ]
