"""The code map agrees with the knowledge base, and every unverified code is listed for review."""

from __future__ import annotations

from pathlib import Path

from b12plan.fhir import load_code_map
from b12plan.fhir.codes import ATC, ICD10, LOINC, RXNORM, SNOMED
from b12plan.knowledge import load_knowledge

K = load_knowledge()
CODES = load_code_map()
DOC = (Path(__file__).parents[2] / "docs" / "fhir-cds-hooks.md").read_text(encoding="utf-8")
SYSTEM_NAMES = {
    LOINC: "LOINC",
    SNOMED: "SNOMED CT",
    ATC: "ATC",
    ICD10: "ICD-10",
    RXNORM: "RxNorm",
}


def test_every_loinc_is_one_the_knowledge_base_lists_for_that_analyte() -> None:
    """Or is marked as extending it, until the knowledge base lists it (then drop the mark)."""
    for entry in CODES.loinc:
        listed = entry.code in K.analyte(entry.analyte).loinc
        assert listed != entry.extends_knowledge, entry


def test_rxnorm_and_name_lists_name_contract_medications_and_symptoms() -> None:
    medications = {m.code for m in K.medications}
    assert {e.medication for e in CODES.rxnorm} <= medications
    assert {e.medication for e in CODES.medication_name} == medications
    assert {e.symptom for e in CODES.symptom} <= {s.code for s in K.symptoms}
    assert len({e.code for e in CODES.rxnorm}) == len(CODES.rxnorm), "an RxNorm code twice"
    for e in CODES.rxnorm:
        assert e.tty in ("IN", "PIN", "SCD", "SBD"), e
        assert e.verified or e.corroboration, e


def test_the_metformin_and_omeprazole_codes_of_us_exports_are_listed() -> None:
    """Issue 12: a US Core export coded metformin 861007 and omeprazole 198051 in RxNorm only."""
    listed = {e.code: e.medication for e in CODES.rxnorm}
    assert (listed["861007"], listed["198051"]) == ("metformin", "ppi")


def test_countries_map_to_jurisdictions_that_have_protocols() -> None:
    jurisdictions = {p.jurisdiction for p in K.protocols}
    assert set(CODES.jurisdiction_by_country.values()) <= jurisdictions
    for spelling, expected in [("USA", "US"), ("United  States", "US"), ("wales", "GB")]:
        assert CODES.jurisdiction_for_country(spelling) == expected
    assert CODES.jurisdiction_for_country("France") is None


def test_loinc_units_are_units_the_analyte_accepts() -> None:
    for entry in CODES.loinc:
        accepted = {CODES.to_ucum(u.symbol) for u in K.analyte(entry.analyte).units}
        assert entry.ucum in accepted, entry


def test_mapped_vocabulary_exists_in_the_contract() -> None:
    causes = {c.code for c in K.causes}
    medications = {m.code for m in K.medications}
    assert {e.cause for e in CODES.cause} <= causes
    assert {e.medication for e in CODES.medication} <= medications
    assert {e.route for e in CODES.route} == {"IM", "SC", "IV", "oral"}
    for extra in CODES.product_atc:
        product = K.formulary.product(extra.product)
        assert product is not None
        assert extra.not_for_deficiency in {n.id for n in product.not_for_deficiency}


def test_every_unverified_code_is_listed_in_the_docs() -> None:
    unverified = CODES.unverified()
    assert unverified, "the reference asks for SNOMED CT codes to stay flagged until checked"
    for system, code, _ in unverified:
        assert f"| {SYSTEM_NAMES[system]} | {code} |" in DOC, (system, code)
