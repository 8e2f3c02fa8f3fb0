"""The shipped knowledge base loads, is internally consistent, and bad edits fail loudly."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import pickle
import re
import sys
from pathlib import Path

import pytest

from b12plan.core.knowledge import Knowledge, KnowledgeError
from b12plan.knowledge import (
    compiled_key,
    load_knowledge,
    parse_knowledge,
    read_compiled,
    shipped_texts,
    write_compiled,
)


def test_every_protocol_of_the_contract_is_present_with_a_source() -> None:
    k = load_knowledge()
    assert {p.id for p in k.protocols} == {
        "gb-hydroxocobalamin-neuro",
        "gb-hydroxocobalamin-non-neuro",
        "gb-hydroxocobalamin-dietary",
        "us-cyanocobalamin-label",
        "us-cyanocobalamin-1000",
        "gb-oral-cyanocobalamin",
        "us-oral-cyanocobalamin",
    }
    for p in k.protocols:
        assert p.source and p.maintenance.source and all(s.source for s in p.loading)


def test_local_choices_are_marked_as_such() -> None:
    k = load_knowledge()
    neuro = k.protocol("gb-hydroxocobalamin-neuro")
    assert neuro.review_source == "b12plan-local"
    assert k.monitoring_spec("neuro_loading_review").local_choice
    assert k.timing_source("severe_anaemia_hb_g_per_l") == "b12plan-local"
    # The clinical safety review found these cited to NG239/Seed: they are local choices.
    assert k.timing_source("symptom_return_fraction") == "b12plan-local"
    assert k.timing_source("worsening_after_days") == "b12plan-local"
    assert k.timing_source("neuro_loading_min_days") == "b12plan-local"
    assert k.timing_source("catch_up_window_days") == "b12plan-local"


def test_hydroxocobalamin_sc_is_off_label_not_a_bnf_route() -> None:
    sc = load_knowledge().formulary.product("hydroxocobalamin")
    assert sc is not None
    route = sc.route_range("SC")
    assert route is not None and route.off_label and route.source == "b12plan-local"


def test_every_dose_range_and_threshold_cites_a_source() -> None:
    k = load_knowledge()
    for p in k.protocols:
        assert (p.dose_range_mcg is None) == (p.dose_range_source is None), p.id
    for a in k.analytes:
        assert {r.unit for r in a.plausible} == {u.symbol for u in a.units}, a.code
        assert all(t.source for t in a.thresholds) and all(r.source for r in a.plausible)


def test_b12_cut_offs_are_stated_in_both_ng_per_l_and_pmol_per_l() -> None:
    b12 = load_knowledge().analyte("b12_total")
    ng = b12.threshold_in("ng/L")
    pmol = b12.threshold_in("pmol/L")
    assert ng is not None and (ng.deficient_below, ng.normal_above) == (180, 350)
    assert pmol is not None and (pmol.deficient_below, pmol.normal_above) == (133, 258)


def test_only_a_clinician_ends_neurological_loading() -> None:
    k = load_knowledge()
    assert [r.code for r in k.reporters if r.ends_neuro_loading] == ["clinician"]
    assert k.symptom_status_precedence[-1] == "worsening"


def test_an_oral_order_cannot_be_edited_into_an_injection_protocol() -> None:
    texts = shipped_texts()
    old = 'kind = "oral"\ntitle = "Oral cyanocobalamin daily (US practice)"'
    assert old in texts["protocols"]
    texts["protocols"] = texts["protocols"].replace(old, 'kind = "injection"\ntitle = "x"')
    with pytest.raises(KnowledgeError, match="us-oral-cyanocobalamin"):
        parse_knowledge(texts)


def test_the_cyanide_antidote_is_flagged_not_for_deficiency() -> None:
    product = load_knowledge().formulary.product("hydroxocobalamin")
    assert product is not None
    antidote = product.not_for_deficiency[0]
    assert antidote.route == "IV" and antidote.min_mcg <= 5_000_000


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("protocols", 'source = "BNF + NG239"', 'source = "BNF + NG999"', "unknown source"),
        ("protocols", "doses = 6\n", "doses = -6\n", "doses must be >= 1"),
        ("protocols", "min_interval_days = 70", "min_interval_days = 90", "dose window"),
        ("analytes", "deficient_below = 133", "deficient_below = 999", "deficient_below"),
        ("analytes", 'worse = "low"', 'worse = "high"', "worse contradicts its cut-offs"),
        ("analytes", 'worse = "high"', 'worse = "up"', "worse must be 'low' or 'high'"),
        ("findings", 'severity = "critical"', 'severity = "urgent"', "unknown severity"),
        ("protocols", 'routes = ["IM"]', 'routes = ["IV"]', "outside the formulary range"),
        ("rules", "timing = [", "timings = [", "unknown key"),
        ("vocabulary", 'version = "2026.12.1"', 'version = "2099.1.0"', "differs"),
        ("formulary", "implausible_factor = 10", "implausible_factor = 'ten'", "expected float"),
    ],
)
def test_a_bad_edit_fails_at_load_naming_the_entry(
    file: str, old: str, new: str, message: str
) -> None:
    texts = shipped_texts()
    assert old in texts[file]
    texts[file] = texts[file].replace(old, new, 1)
    with pytest.raises(KnowledgeError, match=message):
        parse_knowledge(texts)


@pytest.mark.parametrize(
    ("code", "value", "unit", "canonical"),
    [
        ("b12_total", 180, "ng/L", 132.84),
        ("b12_total", 350, "pg/mL", 258.3),
        ("b12_total", 133, "pmol/L", 133),
        ("mma", 400, "nmol/L", 0.4),
        ("mma", 0.4, "µmol/L", 0.4),
        ("homocysteine", 15, "umol/L", 15),
        ("haemoglobin", 12.5, "g/dL", 125),
        ("folate", 6.8, "nmol/L", 3.0),
        ("folate", 3, "ng/mL", 3),
    ],
)
def test_unit_conversions_to_the_canonical_unit(
    code: str, value: float, unit: str, canonical: float
) -> None:
    analyte = load_knowledge().analyte(code)
    assert analyte.to_canonical(value, unit) == pytest.approx(canonical, rel=2e-3)


def test_an_unknown_unit_is_an_error_not_a_guess() -> None:
    with pytest.raises(KnowledgeError, match="unknown unit 'pmol'"):
        load_knowledge().analyte("b12_total").to_canonical(100, "pmol")
    with pytest.raises(KnowledgeError, match="unknown dose unit"):
        load_knowledge().formulary.to_mcg(1, "mL")


def test_nice_thresholds_agree_in_both_units() -> None:
    """NG239 gives 180 ng/L = 133 pmol/L and 350 ng/L = 258 pmol/L."""
    b12 = load_knowledge().analyte("b12_total")
    assert b12.to_canonical(180, "ng/L") == pytest.approx(b12.deficient_below, abs=0.5)
    assert b12.to_canonical(350, "ng/L") == pytest.approx(b12.normal_above, abs=0.5)


# --- the compiled knowledge base (ADR 0058) ---------------------------------------------------


def _with_version(texts: dict[str, str], version: str) -> dict[str, str]:
    return {
        n: re.sub(r'(?m)^version = "[^"]*"$', f'version = "{version}"', t) for n, t in texts.items()
    }


def test_the_shipped_knowledge_base_is_the_parsed_one_however_it_is_loaded() -> None:
    assert load_knowledge() == parse_knowledge(shipped_texts())


def test_a_compiled_knowledge_base_reads_back_as_the_parsed_one(tmp_path: Path) -> None:
    texts = shipped_texts()
    assert read_compiled(tmp_path, texts) is None  # nothing compiled yet
    write_compiled(tmp_path, texts)
    compiled = read_compiled(tmp_path, texts)
    assert compiled is not None and compiled == parse_knowledge(texts)


def test_an_edited_file_is_never_served_from_an_older_compiled_form(tmp_path: Path) -> None:
    texts = shipped_texts()
    old = write_compiled(tmp_path, texts)
    edited = _with_version(texts, "2099.1.1-edited")
    assert compiled_key(edited) != compiled_key(texts)
    assert read_compiled(tmp_path, edited) is None
    write_compiled(tmp_path, edited)
    compiled = read_compiled(tmp_path, edited)
    assert compiled is not None and compiled.version == "2099.1.1-edited"
    assert not old.exists()  # one compiled form per folder: the old key's file is gone
    assert read_compiled(tmp_path, texts) is None


@pytest.mark.parametrize(
    "content",
    [
        b"not a pickle",
        pickle.dumps(("another key", None)),
        pickle.dumps("a knowledge base?"),
    ],
)
def test_a_damaged_or_foreign_compiled_file_is_ignored(tmp_path: Path, content: bytes) -> None:
    texts = shipped_texts()
    path = write_compiled(tmp_path, texts)
    path.write_bytes(content)
    assert read_compiled(tmp_path, texts) is None


def test_a_compiled_file_must_hold_a_knowledge_base_under_its_own_key(tmp_path: Path) -> None:
    texts = shipped_texts()
    path = write_compiled(tmp_path, texts)
    path.write_bytes(pickle.dumps((compiled_key(texts), {"version": "forged"})))
    assert read_compiled(tmp_path, texts) is None


def test_the_key_covers_the_code_of_every_object_in_the_knowledge_base() -> None:
    """``compiled_key`` hashes ``b12plan.core.knowledge``: every class in the tree must be there,
    or an edit to another module's class could leave a stale compiled form readable."""
    modules: set[str] = set()
    plain = (str, int, float, bool, type(None), dt.date)

    def walk(value: object) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            modules.add(type(value).__module__)
            for item in vars(value).values():  # all that is pickled, derived fields too
                walk(item)
        elif isinstance(value, tuple | list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        else:
            assert isinstance(value, plain), type(value)

    walk(parse_knowledge(shipped_texts()))
    assert modules == {Knowledge.__module__}
    # ...and that module's checks use no other b12plan code the key would miss.
    source = Path(str(sys.modules[Knowledge.__module__].__file__)).read_text(encoding="utf-8")
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {m for m in imported if m and m.split(".")[0] == "b12plan"}
