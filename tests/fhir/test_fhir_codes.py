"""The code map agrees with the knowledge base, and every unverified code is listed for review."""

from __future__ import annotations

from pathlib import Path

from b12plan.fhir import load_code_map
from b12plan.fhir.codes import ATC, ICD10, LOINC, SNOMED
from b12plan.knowledge import load_knowledge

K = load_knowledge()
CODES = load_code_map()
DOC = (Path(__file__).parents[2] / "docs" / "fhir-cds-hooks.md").read_text(encoding="utf-8")
SYSTEM_NAMES = {LOINC: "LOINC", SNOMED: "SNOMED CT", ATC: "ATC", ICD10: "ICD-10"}


def test_every_loinc_is_one_the_knowledge_base_lists_for_that_analyte() -> None:
    for entry in CODES.loinc:
        assert entry.code in K.analyte(entry.analyte).loinc, entry


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
