"""Generated contract cases that use every field the FHIR mapping carries.

Unlike the core strategies (clinically shaped courses), these aim at the mapping: LOINC given or
not, every unit spelling, reference ranges, brands, sites, who gave a dose, end dates, text with
odd characters, and contract v1.1's reporter, decisions, prior treatment and date of death.
Every generated document is a valid contract case.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from hypothesis import strategies as st

from b12plan.knowledge import load_knowledge

K = load_knowledge()
FIRST = date(2020, 1, 1)

day = st.integers(0, 2500).map(lambda n: FIRST + timedelta(days=n))
# Any text FHIR can carry (one test covers the white space it cannot) and the contract accepts
# (no NUL: never meaningful in a record, and PostgreSQL cannot store it).
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=24,
).filter(lambda t: re.search(r"[ \r\n\t\S]", t) is not None)
reason = text.filter(str.strip)  # a decision's reason must say something
positive = st.one_of(
    st.integers(1, 5000),
    st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False),
)
non_negative = st.one_of(
    st.integers(0, 5000),
    st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False),
)
PRODUCTS = [p.id for p in K.formulary.products]
ROUTES = ["IM", "SC", "IV", "oral"]
DOSE_UNITS = [u.symbol for u in K.formulary.dose_units]


def _some(draw: st.DrawFn, record: dict[str, Any], key: str, value: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        record[key] = draw(value)


@st.composite
def observation(draw: st.DrawFn) -> dict[str, Any]:
    analyte = draw(st.sampled_from(K.analytes))
    rec: dict[str, Any] = {
        "date": draw(day).isoformat(),
        "value": draw(non_negative),
        "unit": draw(st.sampled_from([u.symbol for u in analyte.units])),
    }
    naming = draw(st.sampled_from(["code", "loinc", "both"]))
    if naming != "loinc":
        rec["code"] = analyte.code
    if naming != "code":
        rec["loinc"] = draw(st.sampled_from(analyte.loinc))
    bounds = draw(st.sampled_from(["none", "low", "high", "both"]))
    low = draw(st.integers(0, 100))
    if bounds in ("low", "both"):
        rec["reference_low"] = low
    if bounds in ("high", "both"):
        rec["reference_high"] = low + draw(st.integers(1, 500))
    return rec


@st.composite
def dose_record(draw: st.DrawFn) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "product": draw(st.sampled_from(PRODUCTS)),
        "dose": draw(positive),
        "unit": draw(st.sampled_from(DOSE_UNITS)),
        "route": draw(st.sampled_from(ROUTES)),
    }
    _some(draw, rec, "brand", text)
    return rec


@st.composite
def administration(draw: st.DrawFn) -> dict[str, Any]:
    rec = draw(dose_record())
    rec["date"] = draw(day).isoformat()
    _some(draw, rec, "given_by", st.sampled_from(["clinic", "self", "carer"]))
    _some(draw, rec, "site", text)
    return rec


@st.composite
def prescription(draw: st.DrawFn) -> dict[str, Any]:
    rec = draw(dose_record())
    start = draw(day)
    rec.update(
        phase=draw(st.sampled_from(["loading", "maintenance"])),
        interval_days=draw(st.integers(1, 400)),
        start=start.isoformat(),
    )
    if draw(st.booleans()):
        rec["end"] = (start + timedelta(days=draw(st.integers(0, 800)))).isoformat()
    return rec


@st.composite
def medication(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(day)
    rec: dict[str, Any] = {
        "code": draw(st.sampled_from([m.code for m in K.medications])),
        "start": start.isoformat(),
    }
    if draw(st.booleans()):
        rec["end"] = (start + timedelta(days=draw(st.integers(0, 800)))).isoformat()
    return rec


@st.composite
def case_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid contract case; records may fall after ``as_of`` (the contract allows it)."""
    doc: dict[str, Any] = {"schema_version": 1, "as_of": draw(day).isoformat()}
    _some(draw, doc, "jurisdiction", st.sampled_from(["GB", "US"]))
    if draw(st.booleans()):
        patient: dict[str, Any] = {}
        _some(draw, patient, "id", text)
        _some(draw, patient, "sex", st.sampled_from(["female", "male", "other", "unknown"]))
        _some(draw, patient, "birth_date", st.just("1940-02-29"))
        _some(draw, patient, "deceased_date", day.map(date.isoformat))
        doc["patient"] = patient
    doc["causes"] = draw(st.lists(st.sampled_from([c.code for c in K.causes]), max_size=3))
    doc["symptoms"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "code": st.sampled_from([s.code for s in K.symptoms]),
                    "date": day.map(date.isoformat),
                    "status": st.sampled_from(list(K.symptom_statuses)),
                },
                optional={"reporter": st.sampled_from(["clinician", "patient", "carer"])},
            ),
            max_size=3,
        )
    )
    doc["observations"] = draw(st.lists(observation(), max_size=4))
    doc["administrations"] = draw(st.lists(administration(), max_size=4))
    if draw(st.booleans()):
        doc["prescription"] = draw(prescription())
    doc["medications"] = draw(st.lists(medication(), max_size=2))
    doc["adverse_events"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "code": st.sampled_from([e.code for e in K.adverse_events]),
                    "date": day.map(date.isoformat),
                }
            ),
            max_size=2,
        )
    )
    doc["decisions"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "code": st.sampled_from(["neuro_loading_complete", "rechallenge_cleared"]),
                    "date": day.map(date.isoformat),
                    "by": text,
                    "reason": reason,
                }
            ),
            max_size=2,
        )
    )
    if draw(st.booleans()):
        doc["prior_treatment"] = {
            "since": draw(day).isoformat(),
            "loading_completed": draw(st.booleans()),
        }
    return doc
