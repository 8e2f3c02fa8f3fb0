"""The code map (``codes.toml``) and the FHIR system URIs b12plan writes and reads.

Terminology codes are data, like the clinical numbers: they live in ``codes.toml`` with a
``verified`` flag, so an unchecked SNOMED CT code is visible as such and can be corrected without
touching the mapping code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, ValidationError

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
STATEMENT_CATEGORY = "http://terminology.hl7.org/CodeSystem/medication-statement-category"


class CodeMapError(ValueError):
    """``codes.toml`` is malformed; the message names the entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoincEntry(_Entry):
    analyte: str
    ucum: str
    code: str
    source: str
    verified: bool = True
    corroboration: str = ""
    extends_knowledge: bool = False  # a code the knowledge base's analyte list lacks (yet)


class CauseEntry(_Entry):
    cause: str
    system: str
    code: str
    display: str
    source: str
    verified: bool = True
    corroboration: str = ""
    import_only: bool = False


class RouteEntry(_Entry):
    route: str
    code: str
    display: str
    verified: bool = True
    corroboration: str = ""


class MedicationEntry(_Entry):
    medication: str
    atc: str
    display: str
    verified: bool = True
    corroboration: str = ""


class RxNormEntry(_Entry):
    """An RxNorm concept (ingredient IN/PIN or clinical drug SCD) of a contract medication."""

    medication: str
    code: str
    tty: str
    display: str
    source: str
    verified: bool = True
    corroboration: str = ""


class MedicationNameEntry(_Entry):
    """Ingredient names that identify a contract medication in a display or text, when no code
    does; ``requires_any`` words must also appear (oral B12, not an injection)."""

    medication: str
    names: tuple[str, ...]
    requires_any: tuple[str, ...] = ()
    source: str


class SymptomEntry(_Entry):
    """The SNOMED CT concept written beside b12plan's own symptom code (for receivers)."""

    symptom: str
    code: str
    display: str
    verified: bool = True
    corroboration: str = ""


class ProductAtcEntry(_Entry):
    product: str
    not_for_deficiency: str
    atc: str
    display: str
    source: str
    verified: bool = True


class CodeMap(_Entry):
    version: str
    reviewed_on: date
    base: str
    ucum: dict[str, str]
    days_per_month: dict[str, int]
    loinc: tuple[LoincEntry, ...]
    cause: tuple[CauseEntry, ...]
    route: tuple[RouteEntry, ...]
    medication: tuple[MedicationEntry, ...]
    product_atc: tuple[ProductAtcEntry, ...]
    rxnorm: tuple[RxNormEntry, ...]
    medication_name: tuple[MedicationNameEntry, ...]
    symptom: tuple[SymptomEntry, ...]
    jurisdiction_by_country: dict[str, str]

    def to_ucum(self, unit: str) -> str:
        """The UCUM code for a contract unit spelling (most spellings already are UCUM)."""
        return self.ucum.get(unit, unit)

    def loinc_for(self, analyte: str, unit: str) -> str | None:
        """The LOINC code whose property matches this unit, if the knowledge base has one."""
        ucum = self.to_ucum(unit)
        return next((e.code for e in self.loinc if e.analyte == analyte and e.ucum == ucum), None)

    def analyte_for_loinc(self, code: str) -> str | None:
        """The analyte of a LOINC code listed here (the knowledge base is asked first)."""
        return next((e.analyte for e in self.loinc if e.code == code), None)

    def symptom_entry(self, symptom: str) -> SymptomEntry | None:
        return next((e for e in self.symptom if e.symptom == symptom), None)

    def jurisdiction_for_country(self, country: str) -> str | None:
        """``Patient.address.country`` (a code or a name, any case) as a jurisdiction."""
        return self.jurisdiction_by_country.get(" ".join(country.lower().split()))

    def route_entry(self, route: str) -> RouteEntry | None:
        return next((e for e in self.route if e.route == route), None)

    def medication_entry(self, medication: str) -> MedicationEntry | None:
        return next((e for e in self.medication if e.medication == medication), None)

    def unverified(self) -> list[tuple[str, str, str]]:
        """(system, code, meaning) of every code still to be checked against its terminology."""
        out: list[tuple[str, str, str]] = []
        out.extend((LOINC, e.code, e.analyte) for e in self.loinc if not e.verified)
        out.extend((e.system, e.code, e.cause) for e in self.cause if not e.verified)
        out.extend((SNOMED, e.code, f"route {e.route}") for e in self.route if not e.verified)
        out.extend((ATC, e.atc, e.medication) for e in self.medication if not e.verified)
        out.extend((ATC, e.atc, e.product) for e in self.product_atc if not e.verified)
        out.extend((RXNORM, e.code, e.medication) for e in self.rxnorm if not e.verified)
        out.extend((SNOMED, e.code, e.symptom) for e in self.symptom if not e.verified)
        return sorted(set(out))


@dataclass(frozen=True)
class Systems:
    """b12plan's own CodeSystem, identifier and extension URIs, all under one base."""

    base: str

    def _cs(self, name: str) -> str:
        return f"{self.base}/CodeSystem/{name}"

    def _sd(self, name: str) -> str:
        return f"{self.base}/StructureDefinition/{name}"

    @property
    def cause(self) -> str:
        return self._cs("cause")

    @property
    def symptom(self) -> str:
        return self._cs("symptom")

    @property
    def symptom_status(self) -> str:
        return self._cs("symptom-status")

    @property
    def analyte(self) -> str:
        return self._cs("analyte")

    @property
    def product(self) -> str:
        return self._cs("product")

    @property
    def route(self) -> str:
        return self._cs("route")

    @property
    def medication(self) -> str:
        return self._cs("medication")

    @property
    def adverse_event(self) -> str:
        return self._cs("adverse-event")

    @property
    def monitoring(self) -> str:
        return self._cs("monitoring")

    @property
    def finding(self) -> str:
        return self._cs("finding")

    @property
    def decision(self) -> str:
        """A clinician's recorded decision (contract v1.1 ``decisions[].code``)."""
        return self._cs("decision")

    @property
    def observation_category(self) -> str:
        """b12plan's own Observation categories (``clinical-decision``)."""
        return self._cs("observation-category")

    @property
    def patient_id(self) -> str:
        return f"{self.base}/sid/patient-id"

    @property
    def jurisdiction(self) -> str:
        return self._sd("jurisdiction")

    @property
    def brand(self) -> str:
        return self._sd("brand")

    @property
    def phase(self) -> str:
        return self._sd("phase")

    @property
    def protocol_derived(self) -> str:
        return self._sd("protocol-derived")

    @property
    def loading_completed(self) -> str:
        """On the MedicationStatement that is the case's ``prior_treatment`` (ADR 0057)."""
        return self._sd("loading-completed")


@cache
def load_code_map() -> CodeMap:
    """The shipped code map (cached: it is immutable)."""
    text = resources.files(__package__).joinpath("codes.toml").read_text(encoding="utf-8")
    return parse_code_map(text)


def parse_code_map(text: str) -> CodeMap:
    try:
        return CodeMap.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise CodeMapError(f"codes.toml: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CodeMapError(f"codes.toml: {where}: {first['msg']}") from exc


@cache
def systems() -> Systems:
    return Systems(load_code_map().base)
