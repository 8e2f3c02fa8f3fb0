"""Typed clinical knowledge, as core sees it.

The TOML files under ``b12plan/knowledge`` are validated into these frozen dataclasses by the
loader (an adapter); core reads numbers only from here, never from literals. Each entry names its
``source`` (an id in ``Knowledge.sources``). ``__post_init__`` checks hold the invariants that the
rules rely on, so a bad edit to the data fails at load with the entry named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any


class KnowledgeError(ValueError):
    """The knowledge base is inconsistent; the message names the entry."""


@dataclass(frozen=True)
class Source:
    id: str
    citation: str
    url: str = ""


@dataclass(frozen=True)
class DoseWindowSpec:
    """Days after the last actual dose: earliest allowed, due, and overdue after."""

    min_interval_days: int
    due_interval_days: int
    overdue_after_days: int

    def __post_init__(self) -> None:
        if not (0 < self.min_interval_days <= self.due_interval_days <= self.overdue_after_days):
            raise KnowledgeError(
                "dose window must satisfy 0 < min_interval_days <= due_interval_days"
                " <= overdue_after_days"
            )


@dataclass(frozen=True)
class LoadingStage:
    """``doses`` at one spacing; ``doses`` None means open-ended (until the end condition)."""

    description: str
    doses: int | None
    window: DoseWindowSpec
    source: str
    doses_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.doses is not None and self.doses < 1:
            raise KnowledgeError(f"loading stage {self.description!r}: doses must be >= 1")
        if (
            self.doses_range is not None
            and self.doses is not None
            and not (1 <= self.doses_range[0] <= self.doses <= self.doses_range[1])
        ):
            raise KnowledgeError(
                f"loading stage {self.description!r}: doses must lie within doses_range"
            )


@dataclass(frozen=True)
class Maintenance:
    description: str
    window: DoseWindowSpec
    source: str
    interval_range_days: tuple[int, int]
    route_alternatives: str = ""

    def __post_init__(self) -> None:
        low, high = self.interval_range_days
        if not low <= self.window.due_interval_days <= high:
            raise KnowledgeError("maintenance: due interval must lie within interval_range_days")


@dataclass(frozen=True)
class Protocol:
    id: str
    title: str
    jurisdiction: str
    product: str
    dose: float
    unit: str
    routes: tuple[str, ...]
    neurological: str  # required | excluded | any: which patients the protocol is for
    dietary_only: str  # required | excluded | any
    jurisdiction_default: bool
    loading_end: str  # "doses" | "symptoms_stop_improving"
    loading: tuple[LoadingStage, ...]
    maintenance: Maintenance
    lifelong_when_chronic: bool
    source: str
    dose_range_mcg: tuple[float, float] | None = None  # doses that select this protocol
    dose_range_source: str | None = None
    kind: str = "injection"  # injection | oral: an oral order never maps to injections
    review_after_days: int | None = None
    review_source: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        for name in ("neurological", "dietary_only"):
            if getattr(self, name) not in ("required", "excluded", "any"):
                raise KnowledgeError(f"protocol {self.id}: {name} must be required|excluded|any")
        if self.loading_end not in ("doses", "symptoms_stop_improving"):
            raise KnowledgeError(f"protocol {self.id}: unknown loading_end {self.loading_end!r}")
        if self.kind not in ("injection", "oral"):
            raise KnowledgeError(f"protocol {self.id}: kind must be injection|oral")
        if (self.dose_range_mcg is None) != (self.dose_range_source is None):
            raise KnowledgeError(f"protocol {self.id}: dose_range_mcg needs dose_range_source")
        if self.kind == "oral":
            if self.loading or self.routes != ("oral",):
                raise KnowledgeError(
                    f"protocol {self.id}: an oral protocol has route oral and no loading"
                )
            return
        if "oral" in self.routes:
            raise KnowledgeError(f"protocol {self.id}: an injection protocol has no oral route")
        if not self.loading:
            raise KnowledgeError(f"protocol {self.id}: needs at least one loading stage")
        for stage in self.loading[:-1]:
            if stage.doses is None:
                raise KnowledgeError(f"protocol {self.id}: only the last stage may be open-ended")
        if (self.loading[-1].doses is None) != (self.loading_end == "symptoms_stop_improving"):
            raise KnowledgeError(
                f"protocol {self.id}: an open-ended last stage needs"
                " loading_end = 'symptoms_stop_improving', and only it"
            )

    @property
    def oral(self) -> bool:
        return self.kind == "oral"

    @property
    def loading_doses_planned(self) -> int | None:
        """Total loading doses, or None when loading ends on the patient's response."""
        if self.loading_end != "doses":
            return None
        return sum(s.doses or 0 for s in self.loading)

    @property
    def loading_doses_minimum(self) -> int | None:
        """Fewest loading doses that complete loading, where stages give a range."""
        if self.loading_end != "doses":
            return None
        return sum(s.doses_range[0] if s.doses_range else (s.doses or 0) for s in self.loading)

    def loading_stage_for_dose(self, dose_number: int) -> LoadingStage | None:
        """The stage that the ``dose_number``-th loading dose (1-based) belongs to."""
        seen = 0
        for stage in self.loading:
            if stage.doses is None:
                return stage
            seen += stage.doses
            if dose_number <= seen:
                return stage
        return None


@dataclass(frozen=True)
class RouteRange:
    """Plausible deficiency doses by one route, in micrograms."""

    route: str
    min_mcg: float
    max_mcg: float
    source: str
    off_label: bool = False  # a dose by this route counts but is flagged route_not_recommended
    notes: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.min_mcg <= self.max_mcg:
            raise KnowledgeError(f"route {self.route}: need 0 < min_mcg <= max_mcg")


@dataclass(frozen=True)
class NotForDeficiency:
    """A product/route/dose that exists for something else (e.g. the cyanide antidote)."""

    id: str
    route: str
    min_mcg: float
    use: str
    source: str


@dataclass(frozen=True)
class Product:
    id: str
    atc: str
    rxnorm: str
    routes: tuple[RouteRange, ...]
    source: str
    not_for_deficiency: tuple[NotForDeficiency, ...] = ()
    notes: str = ""

    def route_range(self, route: str) -> RouteRange | None:
        return next((r for r in self.routes if r.route == route), None)


@dataclass(frozen=True)
class Unit:
    """A unit accepted for one quantity kind and its factor to that kind's canonical unit."""

    symbol: str
    factor: float
    source: str


@dataclass(frozen=True)
class Formulary:
    products: tuple[Product, ...]
    dose_units: tuple[Unit, ...]  # to micrograms
    implausible_factor: float  # a dose this many times outside the range is a unit error
    implausible_source: str

    @cached_property
    def _products(self) -> dict[str, Product]:
        return {p.id: p for p in self.products}

    @cached_property
    def _factors(self) -> dict[str, float]:
        return {u.symbol: u.factor for u in self.dose_units}

    def product(self, product_id: str) -> Product | None:
        return self._products.get(product_id)

    def to_mcg(self, dose: float, unit: str) -> float:
        factor = self._factors.get(unit)
        if factor is None:
            raise KnowledgeError(f"unknown dose unit {unit!r}")
        return dose * factor


@dataclass(frozen=True)
class UnitThreshold:
    """Cut-offs stated by the source in one reported unit: compared in that unit."""

    unit: str
    source: str
    deficient_below: float | None = None
    normal_above: float | None = None


@dataclass(frozen=True)
class PlausibleRange:
    """The physiologically possible values in one unit; outside it a result drives nothing."""

    unit: str
    low: float
    high: float
    source: str

    def __post_init__(self) -> None:
        if not 0 <= self.low < self.high:
            raise KnowledgeError(f"plausible range for {self.unit}: need 0 <= low < high")


@dataclass(frozen=True)
class Analyte:
    """A laboratory analyte: its canonical unit, accepted units, LOINC codes and cut-offs.

    ``deficient_below``/``normal_above`` classify B12-type results (low is bad); ``raised_above``
    marks functional markers (high is bad). All cut-offs are in the canonical unit. ``worse``
    says which direction is the clinical concern, so that of two results on one day the worse
    one counts as the latest.
    """

    code: str
    name: str
    canonical_unit: str
    units: tuple[Unit, ...]
    loinc: tuple[str, ...]
    source: str
    worse: str  # "low" | "high"
    deficient_below: float | None = None
    normal_above: float | None = None
    raised_above: float | None = None
    default_range_note: str = ""
    thresholds: tuple[UnitThreshold, ...] = ()
    plausible: tuple[PlausibleRange, ...] = ()
    follow_up: bool = False  # counts as follow-up laboratory testing after injections

    def __post_init__(self) -> None:
        symbols = {u.symbol for u in self.units}
        for t in self.thresholds:
            if t.unit not in symbols:
                raise KnowledgeError(f"analyte {self.code}: threshold unit {t.unit!r} not accepted")
        for r in self.plausible:
            if r.unit not in symbols:
                raise KnowledgeError(f"analyte {self.code}: plausible unit {r.unit!r} not accepted")
        if self.plausible and {r.unit for r in self.plausible} != symbols:
            raise KnowledgeError(f"analyte {self.code}: a plausible range is needed for every unit")
        if not any(u.symbol == self.canonical_unit and u.factor == 1 for u in self.units):
            raise KnowledgeError(f"analyte {self.code}: canonical unit must have factor 1")
        if (
            self.deficient_below is not None
            and self.normal_above is not None
            and self.deficient_below > self.normal_above
        ):
            raise KnowledgeError(f"analyte {self.code}: deficient_below > normal_above")
        if self.worse not in ("low", "high"):
            raise KnowledgeError(f"analyte {self.code}: worse must be 'low' or 'high'")
        if (self.deficient_below is not None and self.worse != "low") or (
            self.raised_above is not None and self.worse != "high"
        ):
            raise KnowledgeError(f"analyte {self.code}: worse contradicts its cut-offs")

    def threshold_in(self, unit: str) -> UnitThreshold | None:
        return next((t for t in self.thresholds if t.unit == unit), None)

    def plausible_in(self, unit: str) -> PlausibleRange | None:
        return next((r for r in self.plausible if r.unit == unit), None)

    def to_canonical(self, value: float, unit: str) -> float:
        for u in self.units:
            if u.symbol == unit:
                return value * u.factor
        raise KnowledgeError(f"{self.code}: unknown unit {unit!r}")


@dataclass(frozen=True)
class AnaemiaThreshold:
    group: str  # male | female | pregnant
    hb_below_g_per_l: float
    source: str


@dataclass(frozen=True)
class Timing:
    """Named durations and factors the rules use, each cited."""

    name: str
    value: float
    source: str
    description: str


@dataclass(frozen=True)
class VocabularyEntry:
    code: str
    label: str
    source: str
    chronic: bool = False  # causes: irreversible, so treatment is lifelong
    malabsorptive: bool = False  # causes: oral doses need at least 1 mg daily (NG239)
    neurological: bool = False  # symptoms
    kind: str = ""  # adverse events: allergic | local | systemic
    risk_factor: bool = False  # medications: a recorded possible cause (a reason to test)
    ends_neuro_loading: bool = False  # reporters: whose stable/resolved may end neuro loading


@dataclass(frozen=True)
class MessageVariant:
    """Another wording of a finding's message for one situation (e.g. pregnancy)."""

    when: str
    message: str


@dataclass(frozen=True)
class FindingSpec:
    code: str
    severity: str
    title: str
    message: str  # str.format template over the finding's evidence
    rule: str
    advice: str
    source: str
    variants: tuple[MessageVariant, ...] = ()

    def message_for(self, variant: str | None) -> str:
        if variant is None:
            return self.message
        for v in self.variants:
            if v.when == variant:
                return v.message
        raise KnowledgeError(f"finding {self.code}: no message variant {variant!r}")

    def __post_init__(self) -> None:
        if self.severity not in ("info", "warning", "critical"):
            raise KnowledgeError(f"finding {self.code}: unknown severity {self.severity!r}")


@dataclass(frozen=True)
class MonitoringSpec:
    item: str
    after_start_days: int
    reason: str
    source: str
    satisfied_by: tuple[str, ...]
    satisfied_from_days: int
    local_choice: bool = False


@dataclass(frozen=True)
class Knowledge:
    version: str
    reviewed_on: date
    sources: tuple[Source, ...]
    protocols: tuple[Protocol, ...]
    formulary: Formulary
    analytes: tuple[Analyte, ...]
    anaemia: tuple[AnaemiaThreshold, ...]
    timings: tuple[Timing, ...]
    causes: tuple[VocabularyEntry, ...]
    symptoms: tuple[VocabularyEntry, ...]
    symptom_statuses: tuple[str, ...]
    medications: tuple[VocabularyEntry, ...]
    adverse_events: tuple[VocabularyEntry, ...]
    findings: tuple[FindingSpec, ...]
    monitoring: tuple[MonitoringSpec, ...]
    symptom_status_precedence: tuple[str, ...] = ()
    reporters: tuple[VocabularyEntry, ...] = ()
    decisions: tuple[VocabularyEntry, ...] = ()

    def __post_init__(self) -> None:
        if sorted(self.symptom_status_precedence) != sorted(self.symptom_statuses):
            raise KnowledgeError(
                "symptom_status_precedence must list every symptom status exactly once"
            )
        known = {s.id for s in self.sources}
        for cited_by, source in self._citations():
            for part in source.split("+"):
                if part.strip() not in known:
                    raise KnowledgeError(f"{cited_by}: cites unknown source {part.strip()!r}")
        for name in ("protocols", "analytes", "findings", "causes", "symptoms"):
            ids = [getattr(e, "id", None) or getattr(e, "code", None) for e in getattr(self, name)]
            if len(ids) != len(set(ids)):
                raise KnowledgeError(f"{name}: duplicate ids")
        for jurisdiction in {p.jurisdiction for p in self.protocols}:
            defaults = [
                p
                for p in self.protocols
                if p.jurisdiction == jurisdiction and p.jurisdiction_default and not p.oral
            ]
            if len(defaults) != 1:
                raise KnowledgeError(
                    f"jurisdiction {jurisdiction}: needs exactly one default injection protocol"
                )
        for p in self.protocols:
            if p.dose_range_source:
                out_of_range = p.dose_range_mcg is None
                if out_of_range:
                    raise KnowledgeError(f"protocol {p.id}: dose_range_source without a range")
            product = self.formulary.product(p.product)
            if product is None:
                raise KnowledgeError(f"protocol {p.id}: product {p.product!r} not in formulary")
            dose_mcg = self.formulary.to_mcg(p.dose, p.unit)
            for route in p.routes:
                plausible = product.route_range(route)
                if plausible is None or not plausible.min_mcg <= dose_mcg <= plausible.max_mcg:
                    raise KnowledgeError(
                        f"protocol {p.id}: {p.dose} {p.unit} {route} is outside the formulary range"
                    )

    def _citations(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for p in self.protocols:
            out.append((f"protocol {p.id}", p.source))
            out.append((f"protocol {p.id} maintenance", p.maintenance.source))
            out.extend((f"protocol {p.id} loading", s.source) for s in p.loading)
            if p.review_source:
                out.append((f"protocol {p.id} review", p.review_source))
            if p.dose_range_source:
                out.append((f"protocol {p.id} dose range", p.dose_range_source))
        for pr in self.formulary.products:
            out.append((f"product {pr.id}", pr.source))
            out.extend((f"product {pr.id} route {r.route}", r.source) for r in pr.routes)
            out.extend((f"product {pr.id} {n.id}", n.source) for n in pr.not_for_deficiency)
        for a in self.analytes:
            out.append((f"analyte {a.code}", a.source))
            out.extend((f"analyte {a.code} threshold {t.unit}", t.source) for t in a.thresholds)
            out.extend((f"analyte {a.code} plausible {r.unit}", r.source) for r in a.plausible)
        out.extend((f"anaemia {a.group}", a.source) for a in self.anaemia)
        out.extend((f"timing {t.name}", t.source) for t in self.timings)
        for group in (
            self.causes,
            self.symptoms,
            self.medications,
            self.adverse_events,
            self.reporters,
            self.decisions,
        ):
            out.extend((f"vocabulary {v.code}", v.source) for v in group)
        out.extend((f"finding {f.code}", f.source) for f in self.findings)
        out.extend((f"monitoring {m.item}", m.source) for m in self.monitoring)
        return out

    # Look-ups the rules use; a missing entry is a knowledge error, never a silent default.
    @cached_property
    def _index(self) -> dict[tuple[str, str], Any]:
        index: dict[tuple[str, str], Any] = {}
        for kind, entries, key in (
            ("protocol", self.protocols, "id"),
            ("analyte", self.analytes, "code"),
            ("timing", self.timings, "name"),
            ("finding", self.findings, "code"),
            ("cause", self.causes, "code"),
            ("symptom", self.symptoms, "code"),
            ("adverse event", self.adverse_events, "code"),
            ("medication", self.medications, "code"),
            ("reporter", self.reporters, "code"),
            ("monitoring item", self.monitoring, "item"),
        ):
            for entry in entries:
                index[(kind, getattr(entry, key))] = entry
        return index

    def _get(self, kind: str, key: str) -> Any:
        try:
            return self._index[(kind, key)]
        except KeyError:
            raise KnowledgeError(f"no {kind} {key!r} in the knowledge base") from None

    def protocol(self, protocol_id: str) -> Protocol:
        entry: Protocol = self._get("protocol", protocol_id)
        return entry

    def default_protocol(self, jurisdiction: str) -> Protocol:
        """The jurisdiction's default injection protocol (validated at load: exactly one)."""
        return next(
            p
            for p in self.protocols
            if p.jurisdiction == jurisdiction and p.jurisdiction_default and not p.oral
        )

    def analyte(self, code: str) -> Analyte:
        entry: Analyte = self._get("analyte", code)
        return entry

    def timing(self, name: str) -> float:
        entry: Timing = self._get("timing", name)
        return entry.value

    def timing_source(self, name: str) -> str:
        entry: Timing = self._get("timing", name)
        return entry.source

    def finding(self, code: str) -> FindingSpec:
        entry: FindingSpec = self._get("finding", code)
        return entry

    def cause(self, code: str) -> VocabularyEntry:
        entry: VocabularyEntry = self._get("cause", code)
        return entry

    def symptom(self, code: str) -> VocabularyEntry:
        entry: VocabularyEntry = self._get("symptom", code)
        return entry

    def medication(self, code: str) -> VocabularyEntry:
        entry: VocabularyEntry = self._get("medication", code)
        return entry

    def reporter(self, code: str) -> VocabularyEntry:
        entry: VocabularyEntry = self._get("reporter", code)
        return entry

    def status_rank(self, status: str) -> int:
        """Same-day precedence: a higher rank keeps treatment more intensive and counts."""
        return self.symptom_status_precedence.index(status)

    def adverse_event(self, code: str) -> VocabularyEntry:
        entry: VocabularyEntry = self._get("adverse event", code)
        return entry

    def monitoring_spec(self, item: str) -> MonitoringSpec:
        entry: MonitoringSpec = self._get("monitoring item", item)
        return entry

    def analyte_by_loinc(self, loinc: str) -> Analyte | None:
        return next((a for a in self.analytes if loinc in a.loinc), None)
