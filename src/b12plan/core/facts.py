"""Facts derived from the case: results in canonical units, deficiency status, symptoms, causes.

Each function states the guideline reading it implements. Nothing here chooses a dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from b12plan.core.knowledge import Analyte, Knowledge
from b12plan.core.model import Case, Observation, SymptomReport

B12_MARKERS = ("b12_total", "b12_active")
DIAGNOSTIC = ("b12_total", "b12_active", "mma")  # what counts as a pre-treatment test
NOT_RESOLVED = ("present", "worsening", "improving", "stable")
SETTLED = ("stable", "resolved")  # no further improvement expected
IMPROVED = ("improving", "resolved")  # a response to treatment was recorded


@dataclass(frozen=True)
class Result:
    """An observation in its analyte's canonical unit, with the cut-offs that apply to it."""

    date: date
    code: str
    value: float
    unit: str
    low: float | None  # deficient below (B12-type, folate, haemoglobin override)
    normal_above: float | None  # B12-type: above this deficiency is unlikely
    high: float | None  # raised above (MMA, homocysteine, MCV)
    worse: str  # "low" | "high": the direction of clinical concern
    given: Observation
    category: str  # deficient | indeterminate | normal (B12-type); raised | normal (markers)

    def describe(self) -> str:
        shown = self.given
        value = int(shown.value) if float(shown.value).is_integer() else shown.value
        return f"{self.code} {value} {shown.unit} on {self.date.isoformat()} ({self.category})"


def categorise(
    value: float, low: float | None, normal_above: float | None, high: float | None
) -> str:
    """deficient | indeterminate | normal for B12-type; raised | normal for markers."""
    if low is not None and normal_above is not None:
        if value < low:
            return "deficient"
        return "normal" if value > normal_above else "indeterminate"
    if low is not None:
        return "deficient" if value < low else "normal"
    if high is not None:
        return "raised" if value > high else "normal"
    return "normal"


def _cut_offs(
    low: float | None,
    normal_above: float | None,
    high: float | None,
    reference_low: float | None,
    reference_high: float | None,
) -> tuple[float | None, float | None, float | None]:
    """An assay's own reference range overrides the defaults (all in one unit).

    For B12-type analytes ``reference_low`` replaces the deficiency cut-off (NG239's indeterminate
    band stays above it); for markers ``reference_high`` replaces the upper limit.
    """
    if reference_low is not None and low is not None:
        low = reference_low
        if normal_above is not None:
            normal_above = max(normal_above, low)
    if reference_high is not None and high is not None:
        high = reference_high
    return low, normal_above, high


def to_result(obs: Observation, knowledge: Knowledge) -> Result:
    """Convert to the canonical unit and classify.

    Contract v1.1 rule 7: where the knowledge base has cut-offs in the reported unit (NG239 states
    both 180/350 ng/L and 133/258 pmol/L) the reported figure is compared with them, so a value
    exactly at a published cut-off falls where NG239 puts it. Otherwise the canonical value is
    compared with the canonical cut-offs (an assay's own range converted likewise).
    """
    analyte: Analyte = knowledge.analyte(obs.code)
    value = analyte.to_canonical(obs.value, obs.unit)

    def canonical(x: float | None) -> float | None:
        return None if x is None else analyte.to_canonical(x, obs.unit)

    in_unit = analyte.threshold_in(obs.unit)
    if in_unit is not None:
        r_low, r_normal, _ = _cut_offs(
            in_unit.deficient_below, in_unit.normal_above, None, obs.reference_low, None
        )
        category = categorise(obs.value, r_low, r_normal, None)
        low, normal_above, high = canonical(r_low), canonical(r_normal), None
    else:
        low, normal_above, high = _cut_offs(
            analyte.deficient_below,
            analyte.normal_above,
            analyte.raised_above,
            canonical(obs.reference_low),
            canonical(obs.reference_high),
        )
        category = categorise(value, low, normal_above, high)
    return Result(
        obs.date,
        obs.code,
        value,
        analyte.canonical_unit,
        low,
        normal_above,
        high,
        analyte.worse,
        obs,
        category,
    )


def plausible(obs: Observation, knowledge: Knowledge) -> bool:
    """Within the physiologically possible range for its analyte and unit (contract v1.1)."""
    allowed = knowledge.analyte(obs.code).plausible_in(obs.unit)
    return allowed is None or allowed.low <= obs.value <= allowed.high


def implausible(case: Case, knowledge: Knowledge) -> tuple[Observation, ...]:
    """Results impossible for their unit (e.g. haemoglobin 13.6 g/L: likely g/dL)."""
    return tuple(o for o in case.observations if not plausible(o, knowledge))


def results(case: Case, knowledge: Knowledge) -> tuple[Result, ...]:
    """Plausible results by date; on one day, each analyte's worse result last (it counts).

    Two samples of one analyte on one day have no order of their own: taking the worse (lower B12,
    haemoglobin or folate, higher MMA or MCV) is the conservative reading, and the population
    rules read them the same way. Implausible results are left out of every decision.
    """
    found = (to_result(o, knowledge) for o in case.observations if plausible(o, knowledge))
    return tuple(
        sorted(found, key=lambda r: (r.date, r.code, -r.value if r.worse == "low" else r.value))
    )


def latest(
    found: tuple[Result, ...],
    code: str,
    *,
    on_or_before: date | None = None,
    after: date | None = None,
) -> Result | None:
    """The latest result of ``code`` in a date range (records are sorted by date)."""
    chosen = None
    for r in found:
        if r.code != code:
            continue
        if on_or_before is not None and r.date > on_or_before:
            continue
        if after is not None and r.date <= after:
            continue
        chosen = r
    return chosen


@dataclass(frozen=True)
class Deficiency:
    status: str  # confirmed | possible | unlikely | unknown
    basis: tuple[Result, ...]
    problem: str = ""  # why it is unknown


def assess_deficiency(found: tuple[Result, ...], before: date | None) -> Deficiency:
    """NG239: total or active B12 first; MMA when indeterminate; homocysteine is supportive.

    Uses the latest result per analyte dated on or before ``before`` (the first injection), since
    later samples reflect the injections. Two results on the same date that disagree make the
    status unknown rather than a guess.
    """
    basis: list[Result] = []
    for code in ("b12_total", "b12_active", "mma", "homocysteine"):
        last = latest(found, code, on_or_before=before)
        if last is None:
            continue
        same_day = {r.category for r in found if r.code == code and r.date == last.date}
        if len(same_day) > 1:
            return Deficiency("unknown", (), f"contradictory {code} results on {last.date}")
        basis.append(last)
    by_code = {r.code: r.category for r in basis}
    if not basis:
        return Deficiency(
            "unknown",
            (),
            "no B12, active B12, MMA or homocysteine result"
            + (" before treatment" if before is not None else ""),
        )
    b12 = [by_code[c] for c in B12_MARKERS if c in by_code]
    mma = by_code.get("mma")
    hcy = by_code.get("homocysteine")
    if "deficient" in b12:
        status = "confirmed"
    elif "indeterminate" in b12:
        status = {"raised": "confirmed", "normal": "unlikely"}.get(mma or "", "possible")
    elif mma == "raised" or (hcy == "raised" and mma != "normal"):
        # Functional markers raised (e.g. nitrous oxide, or renal disease). Raised homocysteine
        # alone gives at most "possible", and a normal MMA outweighs it (contract v1.1 rule 4):
        # homocysteine is raised also by folate lack, renal disease and hypothyroidism (BSH).
        status = "possible"
    elif b12 or mma == "normal":
        status = "unlikely"
    else:
        return Deficiency("unknown", tuple(basis), "only homocysteine, which is in range")
    return Deficiency(status, tuple(basis))


def anaemia_threshold(case: Case, knowledge: Knowledge) -> tuple[float | None, float | None]:
    """WHO haemoglobin cut-off for this patient as (anaemic below, surely not anaemic at or above).

    Pregnancy uses its own cut-off; an unknown sex gives a band, so anaemia is only concluded where
    every group would agree.
    """
    by_group = {a.group: a.hb_below_g_per_l for a in knowledge.anaemia}
    if "pregnancy" in case.causes:
        cut = by_group["pregnant"]
        return cut, cut
    sex = case.patient.sex
    if sex in ("female", "male"):
        return by_group[sex], by_group[sex]
    return min(by_group["female"], by_group["male"]), max(by_group["female"], by_group["male"])


def is_anaemic(hb: Result | None, case: Case, knowledge: Knowledge) -> bool | None:
    if hb is None:
        return None
    if hb.given.reference_low is not None:  # the laboratory's own lower limit wins
        low = knowledge.analyte("haemoglobin").to_canonical(hb.given.reference_low, hb.given.unit)
        return hb.value < low
    below, surely_not = anaemia_threshold(case, knowledge)
    assert below is not None and surely_not is not None
    if hb.value < below:
        return True
    if hb.value >= surely_not:
        return False
    return None


def ordered_symptoms(case: Case, knowledge: Knowledge) -> tuple[SymptomReport, ...]:
    """Symptom records by date; on one date the status that keeps treatment more intensive last.

    Contract v1.1 rule 2: two statuses of one symptom on one date (a patient's diary and a
    clinician's note, say) have no order of their own; the more intensive (worsening > present >
    improving > stable > resolved, from the knowledge base) counts as the latest, as the worse of
    two same-day results does.
    """
    return tuple(
        sorted(
            case.symptoms,
            key=lambda s: (s.date, s.code, knowledge.status_rank(s.status), s.reporter),
        )
    )


def current_record(
    symptoms: tuple[SymptomReport, ...], code: str, on_or_before: date
) -> SymptomReport | None:
    """The record that sets a symptom's status on a day (``symptoms`` from ``ordered_symptoms``)."""
    found = None
    for s in symptoms:
        if s.code == code and s.date <= on_or_before:
            found = s
    return found


def latest_symptom_status(
    symptoms: tuple[SymptomReport, ...], code: str, on_or_before: date
) -> str | None:
    record = current_record(symptoms, code, on_or_before)
    return None if record is None else record.status


def neurological_codes(case: Case, knowledge: Knowledge) -> tuple[str, ...]:
    """Neurological symptom codes ever recorded: any such record means neurological involvement."""
    return tuple(sorted({s.code for s in case.symptoms if knowledge.symptom(s.code).neurological}))


def unresolved(
    symptoms: tuple[SymptomReport, ...], codes: tuple[str, ...], on: date
) -> tuple[str, ...]:
    return tuple(c for c in codes if latest_symptom_status(symptoms, c, on) in NOT_RESOLVED)


def age_years(birth: date | None, on: date) -> int | None:
    """Completed years of age on ``on``; None when the birth date is not known."""
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def nitrous_oxide_sources(case: Case) -> tuple[str, ...]:
    """Where nitrous oxide use is recorded: as a cause, as a medication, or both."""
    via = []
    if "nitrous_oxide" in case.causes:
        via.append("cause")
    if any(m.code == "nitrous_oxide" for m in case.medications):
        via.append("medication")
    return tuple(via)


def cause_chronic(case: Case, knowledge: Knowledge) -> bool:
    return any(knowledge.cause(c).chronic for c in case.causes)


def dietary_only(case: Case) -> bool:
    """Dietary is the only absorption-related cause (pregnancy, breastfeeding and 'unknown' do
    not count)."""
    others = set(case.causes) - {"dietary", "pregnancy", "breastfeeding", "unknown"}
    return "dietary" in case.causes and not others
