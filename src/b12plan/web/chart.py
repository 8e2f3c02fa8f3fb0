"""The patient timeline as a Plotly figure, built from a case and its assessment.

The figure is plain JSON (``{"data": [...], "layout": {...}}``) rendered in the browser by the
vendored ``plotly.min.js``, so building it costs no Plotly import on the server. Reference bands
come from the knowledge base through the same core helpers the rules use (``to_result``,
``anaemia_threshold``), so what the chart shades as deficient is what the rules call deficient.
Rows, top to bottom: injections (given and planned), symptom reports as bands, then B12, MMA,
haemoglobin and MCV, each on its own axis. The same facts come as table rows for screen readers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from b12plan.core.assessment import Assessment, DoseValidity
from b12plan.core.facts import Result, anaemia_threshold, is_anaemic, to_result
from b12plan.core.knowledge import Knowledge
from b12plan.core.model import Administration, Case

Figure = dict[str, Any]

# Colours after Okabe-Ito, darkened where needed so every marker and band edge has at least 3:1
# contrast on white (WCAG 1.4.11); every colour is paired with a marker symbol, so nothing is
# told by colour alone.
LOADING_COLOUR = "#B35900"
MAINTENANCE_COLOUR = "#0072B2"
ACTIVE_B12_COLOUR = "#A8327F"
BAND_DEFICIENT = "rgba(213, 94, 0, 0.16)"
BAND_INDETERMINATE = "rgba(230, 159, 0, 0.16)"
PLANNED_FILL = "rgba(0, 114, 178, 0.07)"
WINDOW_FILL = "rgba(0, 158, 115, 0.18)"
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "worsening": ("#C0392B", "triangle-up"),
    "present": ("#B35900", "circle"),
    "stable": ("#6A3D9A", "square"),
    "improving": ("#3C87C0", "triangle-down"),
    "resolved": ("#007A5A", "star"),
}
MARKER_COLOURS = (
    LOADING_COLOUR,
    MAINTENANCE_COLOUR,
    ACTIVE_B12_COLOUR,
    *(colour for colour, _ in STATUS_STYLE.values()),
)

INJECTION_ROW = "Injections"
LAB_ROWS = ("b12", "mma", "haemoglobin", "mcv")
_ROW_TITLES = {
    "injections": "Injections",
    "symptoms": "Symptoms",
    "b12": "B12 (pmol/L)",
    "mma": "MMA (µmol/L)",
    "haemoglobin": "Hb (g/L)",
    "mcv": "MCV (fL)",
}
_ROW_ORDER = ("injections", "symptoms", *LAB_ROWS)
_ROW_WEIGHT = {"injections": 0.7, "symptoms": 1.2, "b12": 1, "mma": 1, "haemoglobin": 1, "mcv": 1}
_GAP = 0.035


@dataclass(frozen=True)
class TimelineRow:
    """One fact of the chart as text: the accessible alternative to the picture."""

    date: date
    kind: str
    detail: str
    planned: bool = False  # from the schedule, not a record


def timeline_figure(case: Case, assessment: Assessment, knowledge: Knowledge) -> Figure:
    """The Plotly figure for the patient page; records dated after ``as_of`` are left out."""
    as_of = assessment.as_of
    known = case.known_on(as_of)
    axes = _axes()
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []

    data += _injection_traces(known, assessment, knowledge, axes["injections"])
    data += _symptom_traces(known, knowledge, axes["symptoms"])
    results = tuple(to_result(o, knowledge) for o in known.observations)
    for row in LAB_ROWS:
        traces, bands, y_range = _lab_row(row, results, known, knowledge, axes[row])
        data += traces
        shapes += bands
        axes[row] = {**axes[row], "range": y_range}
        if not traces:
            annotations.append(_empty_note(axes[row]["_ref"], "no results"))

    shapes += _plan_shapes(assessment, axes["injections"]["_ref"])
    annotations += _plan_notes(assessment)
    x_range = _x_range(known, assessment)
    layout: dict[str, Any] = {
        "height": 760,
        "margin": {"l": 110, "r": 20, "t": 30, "b": 40},
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.06, "font": {"size": 12}},
        "hovermode": "closest",
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": "#1a1a1a"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "xaxis": {
            "type": "date",
            "range": [d.isoformat() for d in x_range],
            "showgrid": True,
            "gridcolor": "#e6e6e6",
            "anchor": axes["mcv"]["_name"],
        },
        "shapes": shapes,
        "annotations": annotations,
    }
    for row in _ROW_ORDER:
        spec = {k: v for k, v in axes[row].items() if not k.startswith("_")}
        layout[_layout_key(axes[row]["_name"])] = spec
    return {"data": data, "layout": layout}


def timeline_rows(case: Case, assessment: Assessment, knowledge: Knowledge) -> list[TimelineRow]:
    """The chart's facts in date order, for the table under the chart and for print."""
    known = case.known_on(assessment.as_of)
    rows: list[TimelineRow] = []
    for a, judged in _judged_doses(known, assessment):
        if a.route == "oral":
            continue
        phase = judged.counts_as if judged.valid else "not counted: " + ", ".join(judged.reasons)
        rows.append(TimelineRow(a.date, f"Injection ({phase})", _administration_text(a)))
    for s in known.symptoms:
        label = knowledge.symptom(s.code).label
        rows.append(TimelineRow(s.date, "Symptom", f"{label}: {s.status}"))
    for o in known.observations:
        r = to_result(o, knowledge)
        rows.append(
            TimelineRow(
                o.date,
                knowledge.analyte(o.code).name,
                f"{_num(o.value)} {o.unit} ({category(r, known, knowledge)})",
            )
        )
    for d in assessment.schedule:
        rows.append(
            TimelineRow(d.date, f"Planned dose ({d.phase})", f"{_num(d.dose)} {d.unit}", True)
        )
    order = {"Injection": 0, "Planned": 1, "Symptom": 2}
    return sorted(
        rows, key=lambda r: (r.date, order.get(r.kind.split(" ")[0], 3), r.kind, r.detail)
    )


# --- rows ---------------------------------------------------------------------------------------


def _axes() -> dict[str, dict[str, Any]]:
    """One y axis per row, stacked top to bottom on a shared date axis."""
    total = sum(_ROW_WEIGHT.values())
    usable = 1 - _GAP * (len(_ROW_ORDER) - 1)
    top = 1.0
    axes: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(_ROW_ORDER):
        height = usable * _ROW_WEIGHT[row] / total
        name = "y" if i == 0 else f"y{i + 1}"
        axes[row] = {
            "_name": name,
            "_ref": name,
            "domain": [round(max(top - height, 0), 4), round(top, 4)],
            "anchor": "x",
            "title": {"text": _ROW_TITLES[row], "font": {"size": 12}},
            "gridcolor": "#eeeeee",
            "zeroline": False,
            "fixedrange": True,
        }
        top -= height + _GAP
    axes["injections"].update({"type": "category", "showticklabels": False})
    axes["symptoms"].update({"type": "category", "automargin": True})
    return axes


def _judged_doses(known: Case, assessment: Assessment) -> list[tuple[Administration, DoseValidity]]:
    """Each administration with the core's judgement of it (``dose_validity`` is in the same
    order as the case's administrations): the chart shows what the assessment counted."""
    return list(zip(known.administrations, assessment.dose_validity, strict=True))


def _layout_key(axis_name: str) -> str:
    return "yaxis" if axis_name == "y" else f"yaxis{axis_name[1:]}"


def _injection_traces(
    case: Case, assessment: Assessment, knowledge: Knowledge, axis: dict[str, Any]
) -> list[dict[str, Any]]:
    judged = _judged_doses(case.known_on(assessment.as_of), assessment)
    traces = []
    for phase, colour, symbol in (
        ("loading", LOADING_COLOUR, "diamond"),
        ("maintenance", MAINTENANCE_COLOUR, "circle"),
    ):
        chosen = [a for a, d in judged if d.counts_as == phase]
        if chosen:
            traces.append(
                _points(
                    f"{phase.capitalize()} dose given",
                    [a.date for a in chosen],
                    [INJECTION_ROW] * len(chosen),
                    [_administration_text(a) for a in chosen],
                    axis,
                    {"symbol": symbol, "size": 13, "color": colour},
                )
            )
    for phase, colour, symbol in (
        ("loading", LOADING_COLOUR, "diamond-open"),
        ("maintenance", MAINTENANCE_COLOUR, "circle-open"),
    ):
        planned = [d for d in assessment.schedule if d.phase == phase]
        if planned:
            traces.append(
                _points(
                    f"{phase.capitalize()} dose planned",
                    [d.date for d in planned],
                    [INJECTION_ROW] * len(planned),
                    [f"planned {phase} dose {_num(d.dose)} {d.unit}" for d in planned],
                    axis,
                    {"symbol": symbol, "size": 13, "color": colour, "line": {"width": 2}},
                )
            )
    return traces


def _symptom_traces(case: Case, knowledge: Knowledge, axis: dict[str, Any]) -> list[dict[str, Any]]:
    """Each symptom is a band on its own line: a segment from each report to the next, coloured
    by the status reported, so a patient's course reads left to right."""
    by_status: dict[str, tuple[list[str | None], list[str | None], list[str]]] = {
        status: ([], [], []) for status in STATUS_STYLE
    }
    codes = sorted({s.code for s in case.symptoms})
    for code in codes:
        reports = [s for s in case.symptoms if s.code == code]
        label = knowledge.symptom(code).label
        for i, report in enumerate(reports):
            end = reports[i + 1].date if i + 1 < len(reports) else case.as_of
            end = max(end, report.date + timedelta(days=1))
            xs, ys, texts = by_status.setdefault(report.status, ([], [], []))
            xs += [report.date.isoformat(), end.isoformat(), None]
            ys += [label, label, None]
            text = f"{label}: {report.status} (reported {report.date.isoformat()})"
            texts += [text, text, ""]
    traces = []
    for status, (xs, ys, texts) in by_status.items():
        if not xs:
            continue
        colour, symbol = STATUS_STYLE.get(status, ("#444444", "circle"))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"Symptom {status}",
                "x": xs,
                "y": ys,
                "text": texts,
                "hoverinfo": "text",
                "yaxis": axis["_ref"],
                "line": {"color": colour, "width": 9},
                "marker": {"color": colour, "symbol": symbol, "size": 11},
                "connectgaps": False,
            }
        )
    if not codes:
        axis["showticklabels"] = False
    return traces


def _lab_row(
    row: str,
    results: tuple[Result, ...],
    case: Case,
    knowledge: Knowledge,
    axis: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[float]]:
    """Traces, reference bands and the y range for one laboratory row."""
    codes = ("b12_total", "b12_active") if row == "b12" else (row,)
    traces = []
    values: list[float] = []
    for code in codes:
        chosen = [r for r in results if r.code == code]
        if not chosen:
            continue
        values += [r.value for r in chosen]
        name = knowledge.analyte(code).name
        if code == "b12_active":
            name += " (bands are for total B12)"
        traces.append(
            {
                **_points(
                    name,
                    [r.date for r in chosen],
                    [round(r.value, 3) for r in chosen],
                    [_result_text(r, case, knowledge) for r in chosen],
                    axis,
                    {
                        "symbol": "square" if code == "b12_active" else "circle",
                        "size": 9,
                        "color": "#1a1a1a" if code != "b12_active" else ACTIVE_B12_COLOUR,
                    },
                ),
                "mode": "lines+markers",
                "line": {
                    "color": "#555555" if code != "b12_active" else ACTIVE_B12_COLOUR,
                    "width": 1.5,
                },
            }
        )
    bands, limits = _bands(row, case, knowledge, axis["_ref"])
    lo_floor = row in ("b12", "mma")
    everything = values + limits
    top = max(everything) * 1.25 if everything else 1.0
    bottom = 0.0 if lo_floor or not everything else min(everything) * 0.8
    y_range = [round(bottom, 3), round(top, 3)]
    for band in bands:  # a band open at the top reaches the top of the axis
        if band["y1"] is None:
            band["y1"] = y_range[1]
        if band["y0"] is None:
            band["y0"] = y_range[0]
    return traces, bands, y_range


def _bands(
    row: str, case: Case, knowledge: Knowledge, yref: str
) -> tuple[list[dict[str, Any]], list[float]]:
    """Shaded ranges from the knowledge base defaults (a lab's own range shows in the hover)."""

    def band(y0: float | None, y1: float | None, fill: str, label: str) -> dict[str, Any]:
        return {
            "type": "rect",
            "xref": "x domain",
            "x0": 0,
            "x1": 1,
            "yref": yref,
            "y0": y0,
            "y1": y1,
            "fillcolor": fill,
            "line": {"width": 0},
            "layer": "below",
            "name": label,
        }

    if row == "b12":
        a = knowledge.analyte("b12_total")
        if a.deficient_below is None or a.normal_above is None:
            return [], []
        return [
            band(0, a.deficient_below, BAND_DEFICIENT, "deficient"),
            band(a.deficient_below, a.normal_above, BAND_INDETERMINATE, "indeterminate"),
        ], [a.deficient_below, a.normal_above]
    if row in ("mma", "mcv"):
        high = knowledge.analyte(row).raised_above
        if high is None:
            return [], []
        return [band(high, None, BAND_DEFICIENT, "raised")], [high]
    if row == "haemoglobin":
        below, surely_not = anaemia_threshold(case, knowledge)
        if below is None or surely_not is None:
            return [], []
        shapes = [band(None, below, BAND_DEFICIENT, "anaemia")]
        if surely_not > below:
            shapes.append(band(below, surely_not, BAND_INDETERMINATE, "anaemia if female"))
        return shapes, [below, surely_not]
    return [], []


def _plan_shapes(assessment: Assessment, injection_ref: str) -> list[dict[str, Any]]:
    """Today's line, the planned future shaded, and the next dose window on the injection row."""
    as_of = assessment.as_of
    shapes: list[dict[str, Any]] = [
        {
            "type": "line",
            "xref": "x",
            "x0": as_of.isoformat(),
            "x1": as_of.isoformat(),
            "yref": "paper",
            "y0": 0,
            "y1": 1,
            "line": {"color": "#1a1a1a", "width": 1.5, "dash": "dot"},
        }
    ]
    if assessment.schedule:
        end = max(d.date for d in assessment.schedule) + timedelta(days=3)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "x0": as_of.isoformat(),
                "x1": end.isoformat(),
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "fillcolor": PLANNED_FILL,
                "line": {"width": 0},
                "layer": "below",
                "name": "planned schedule",
            }
        )
    window = assessment.next_dose
    if window is not None:
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "x0": window.earliest.isoformat(),
                "x1": (window.overdue_after + timedelta(days=1)).isoformat(),
                "yref": f"{injection_ref} domain",
                "y0": 0.1,
                "y1": 0.9,
                "fillcolor": WINDOW_FILL,
                "line": {"color": "#007A5A", "width": 1},
                "layer": "below",
                "name": "next dose window",
            }
        )
    return shapes


def _plan_notes(assessment: Assessment) -> list[dict[str, Any]]:
    notes = [
        {
            "xref": "x",
            "yref": "paper",
            "x": assessment.as_of.isoformat(),
            "y": 1.0,
            "yanchor": "bottom",
            "text": f"today {assessment.as_of.isoformat()}",
            "showarrow": False,
            "font": {"size": 11},
        }
    ]
    if assessment.schedule:
        notes.append(
            {
                "xref": "x",
                "yref": "paper",
                "x": max(d.date for d in assessment.schedule).isoformat(),
                "y": 1.0,
                "yanchor": "bottom",
                "xanchor": "right",
                "text": "planned",
                "showarrow": False,
                "font": {"size": 11, "color": MAINTENANCE_COLOUR},
            }
        )
    return notes


def _empty_note(yref: str, text: str) -> dict[str, Any]:
    return {
        "xref": "x domain",
        "yref": f"{yref} domain",
        "x": 0.5,
        "y": 0.5,
        "text": text,
        "showarrow": False,
        "font": {"size": 11, "color": "#595959"},
    }


def _x_range(case: Case, assessment: Assessment) -> tuple[date, date]:
    dates: list[date] = [assessment.as_of]
    dates += [a.date for a in case.administrations]
    dates += [o.date for o in case.observations]
    dates += [s.date for s in case.symptoms]
    dates += [d.date for d in assessment.schedule]
    if assessment.next_dose is not None:
        dates.append(assessment.next_dose.overdue_after)
    return min(dates) - timedelta(days=7), max(dates) + timedelta(days=7)


# --- small helpers ------------------------------------------------------------------------------


def _points(
    name: str,
    xs: Iterable[date],
    ys: Iterable[object],
    texts: Iterable[str],
    axis: dict[str, Any],
    marker: dict[str, Any],
) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "x": [x.isoformat() for x in xs],
        "y": list(ys),
        "text": list(texts),
        "hoverinfo": "text+x",
        "yaxis": axis["_ref"],
        "marker": marker,
    }


def _administration_text(a: Any) -> str:
    parts = [f"{a.product} {_num(a.dose)} {a.unit} {a.route}"]
    if a.site:
        parts.append(f"site: {a.site}")
    if a.given_by:
        parts.append(f"given by {a.given_by}")
    return ", ".join(parts)


def category(r: Result, case: Case, knowledge: Knowledge) -> str:
    """The result's reading in words; haemoglobin is read against the WHO anaemia cut-offs."""
    if r.code != "haemoglobin":
        return r.category
    anaemic = is_anaemic(r, case, knowledge)
    return {True: "anaemia", False: "not anaemic", None: "borderline"}[anaemic]


def _result_text(r: Result, case: Case, knowledge: Knowledge) -> str:
    shown = r.given
    text = f"{_num(shown.value)} {shown.unit} ({category(r, case, knowledge)})"
    if shown.unit != r.unit:
        text += f" = {_num(round(r.value, 3))} {r.unit}"
    if shown.reference_low is not None or shown.reference_high is not None:
        low = "" if shown.reference_low is None else _num(shown.reference_low)
        high = "" if shown.reference_high is None else _num(shown.reference_high)
        text += f"; lab range {low}-{high} {shown.unit}"
    return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
