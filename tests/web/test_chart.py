"""The timeline figure: what a clinician sees must match what the rules concluded."""

from __future__ import annotations

import copy
from typing import Any

import plotly.graph_objects as go
import pytest

from b12plan.contract import parse_case
from b12plan.core import evaluate
from b12plan.core.knowledge import Knowledge
from b12plan.knowledge import load_knowledge
from b12plan.web.chart import timeline_figure, timeline_rows

LOADING_THEN_MAINTENANCE: dict[str, Any] = {
    "schema_version": 1,
    "as_of": "2026-03-01",
    "jurisdiction": "GB",
    "patient": {"id": "p-chart", "sex": "female", "birth_date": "1960-01-01"},
    "causes": ["pernicious_anaemia"],
    "symptoms": [
        {"code": "fatigue", "date": "2025-08-01", "status": "present"},
        {"code": "fatigue", "date": "2025-10-01", "status": "improving"},
    ],
    "observations": [
        {"code": "b12_total", "date": "2025-07-28", "value": 90, "unit": "pmol/L"},
        {"code": "haemoglobin", "date": "2025-07-28", "value": 10.5, "unit": "g/dL"},
        {"code": "mcv", "date": "2025-07-28", "value": 108, "unit": "fL"},
        {"code": "mma", "date": "2025-10-20", "value": 250, "unit": "nmol/L"},
    ],
    "administrations": [
        {"date": d, "product": "hydroxocobalamin", "dose": 1, "unit": "mg", "route": "IM"}
        for d in (
            "2025-08-04",
            "2025-08-06",
            "2025-08-08",
            "2025-08-11",
            "2025-08-13",
            "2025-08-15",
            "2025-11-07",
        )
    ],
}


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge()


def figure_for(doc: dict[str, Any], knowledge: Knowledge) -> dict[str, Any]:
    case = parse_case(doc, knowledge)
    return timeline_figure(case, evaluate(case, knowledge, as_of=case.as_of), knowledge)


def trace(figure: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [t for t in figure["data"] if t["name"] == name]
    assert found, f"no trace {name!r} in {[t['name'] for t in figure['data']]}"
    return found[0]


def test_figure_is_valid_plotly(knowledge: Knowledge) -> None:
    # Plotly's own validator refuses unknown properties and bad values.
    go.Figure(figure_for(LOADING_THEN_MAINTENANCE, knowledge))


def test_loading_and_maintenance_injections_are_told_apart(knowledge: Knowledge) -> None:
    figure = figure_for(LOADING_THEN_MAINTENANCE, knowledge)
    loading = trace(figure, "Loading dose given")
    maintenance = trace(figure, "Maintenance dose given")
    assert len(loading["x"]) == 6
    assert maintenance["x"] == ["2025-11-07"]
    assert loading["marker"]["symbol"] != maintenance["marker"]["symbol"]


def test_each_lab_is_on_its_own_axis_in_canonical_units(knowledge: Knowledge) -> None:
    figure = figure_for(LOADING_THEN_MAINTENANCE, knowledge)
    axes = {
        name: trace(figure, knowledge.analyte(code).name)["yaxis"]
        for name, code in (("b12", "b12_total"), ("mma", "mma"), ("hb", "haemoglobin"))
    }
    axes["mcv"] = trace(figure, knowledge.analyte("mcv").name)["yaxis"]
    assert len(set(axes.values())) == 4
    assert trace(figure, knowledge.analyte("haemoglobin").name)["y"] == [105]  # g/dL -> g/L
    assert trace(figure, knowledge.analyte("mma").name)["y"] == [0.25]  # nmol/L -> umol/L


def test_reference_bands_use_the_knowledge_base_cut_offs(knowledge: Knowledge) -> None:
    figure = figure_for(LOADING_THEN_MAINTENANCE, knowledge)
    b12_axis = trace(figure, knowledge.analyte("b12_total").name)["yaxis"]
    bands = {s["name"]: s for s in figure["layout"]["shapes"] if s.get("yref") == b12_axis}
    b12 = knowledge.analyte("b12_total")
    assert bands["deficient"]["y1"] == b12.deficient_below
    assert (bands["indeterminate"]["y0"], bands["indeterminate"]["y1"]) == (
        b12.deficient_below,
        b12.normal_above,
    )
    mcv_axis = trace(figure, knowledge.analyte("mcv").name)["yaxis"]
    raised = [s for s in figure["layout"]["shapes"] if s.get("yref") == mcv_axis]
    assert raised[0]["y0"] == knowledge.analyte("mcv").raised_above
    hb_axis = trace(figure, knowledge.analyte("haemoglobin").name)["yaxis"]
    anaemia = [s for s in figure["layout"]["shapes"] if s.get("yref") == hb_axis]
    female = next(a.hb_below_g_per_l for a in knowledge.anaemia if a.group == "female")
    assert anaemia[0]["y1"] == female


def test_symptoms_form_a_band_coloured_by_status(knowledge: Knowledge) -> None:
    figure = figure_for(LOADING_THEN_MAINTENANCE, knowledge)
    present = trace(figure, "Symptom present")
    improving = trace(figure, "Symptom improving")
    # present from its report until the next report; improving until today
    assert present["x"][:2] == ["2025-08-01", "2025-10-01"]
    assert improving["x"][:2] == ["2025-10-01", "2026-03-01"]
    assert present["y"][0] == knowledge.symptom("fatigue").label


def test_planned_schedule_is_shaded_from_today(knowledge: Knowledge) -> None:
    case = parse_case(LOADING_THEN_MAINTENANCE, knowledge)
    assessment = evaluate(case, knowledge, as_of=case.as_of)
    figure = timeline_figure(case, assessment, knowledge)
    planned = [s for s in figure["layout"]["shapes"] if s.get("name") == "planned schedule"]
    assert planned[0]["x0"] == "2026-03-01"
    assert planned[0]["x1"] > max(d.date for d in assessment.schedule).isoformat()
    planned_doses = trace(figure, "Maintenance dose planned")
    assert planned_doses["x"] == [d.date.isoformat() for d in assessment.schedule]


def test_records_after_as_of_are_not_drawn(knowledge: Knowledge) -> None:
    doc = copy.deepcopy(LOADING_THEN_MAINTENANCE)
    doc["observations"].append(
        {"code": "b12_total", "date": "2026-04-01", "value": 400, "unit": "pmol/L"}
    )
    figure = figure_for(doc, knowledge)
    assert "2026-04-01" not in trace(figure, knowledge.analyte("b12_total").name)["x"]


def test_an_empty_case_still_draws_every_row(knowledge: Knowledge) -> None:
    figure = figure_for({"schema_version": 1, "as_of": "2026-03-01"}, knowledge)
    go.Figure(figure)
    notes = [a["text"] for a in figure["layout"]["annotations"]]
    assert notes.count("no results") == 4


def test_table_rows_say_the_same_as_the_chart(knowledge: Knowledge) -> None:
    case = parse_case(LOADING_THEN_MAINTENANCE, knowledge)
    assessment = evaluate(case, knowledge, as_of=case.as_of)
    rows = timeline_rows(case, assessment, knowledge)
    kinds = [r.kind for r in rows]
    assert kinds.count("Injection (loading)") == 6
    assert kinds.count("Injection (maintenance)") == 1
    hb = next(r for r in rows if r.kind == "Haemoglobin")
    assert hb.detail == "10.5 g/dL (anaemia)"
    assert [r.date for r in rows] == sorted(r.date for r in rows)
    assert all(r.planned for r in rows if r.kind.startswith("Planned"))


def test_what_a_patient_typed_shows_as_typed_not_as_chart_markup() -> None:
    """Plotly reads <b>, <br> and <a href> in hover text; an injection site typed by a patient
    must not restyle, break or link the clinician's chart (issue 13)."""
    knowledge = load_knowledge()
    document = copy.deepcopy(LOADING_THEN_MAINTENANCE)
    document["administrations"][0]["site"] = '<b>left</b><br><a href="https://x.example">arm</a>'
    case = parse_case(document, knowledge)
    figure = timeline_figure(case, evaluate(case, knowledge, as_of=case.as_of), knowledge)
    texts = [t for trace in figure["data"] for t in trace.get("text", []) if isinstance(t, str)]
    typed = [t for t in texts if "left" in t]
    assert typed and all("<" not in t and ">" not in t for t in typed)
    assert "&lt;b&gt;left&lt;/b&gt;&lt;br&gt;" in typed[0]
