"""The patient's symptom diary: 0–10 scores turned into contract symptom codes and statuses.

Patients rate how they feel; the rules read ``present | worsening | improving | stable |
resolved`` per symptom code. The mapping (which scale feeds which code, how many points make a
change) is data in ``data/diary.toml`` and is a local choice, documented there and in
``docs/web.md``. The score itself is kept in the record's note (``diary score 6/10``) so the
next entry can be compared with it.

``save_diary`` is the use case (the web's diary form calls it; an API route could too): it reads
the patient's symptom history, turns the scores into reports and stores them all in one
transaction (ADR 0062), as the patient's or carer's (ADR 0060).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from b12plan.core.knowledge import Knowledge
from b12plan.service.errors import InvalidInput, field_error
from b12plan.service.records import RecordsService
from b12plan.service.schemas import KINDS, Principal, StoredRecord, SymptomIn

_NOTE = re.compile(r"\bdiary score (\d{1,2})/(\d{1,2})\b")
_SETTLING = ("improving", "stable")


@dataclass(frozen=True)
class Scale:
    field: str  # the form field
    label: str
    hint: str
    code: str  # contract symptom code


@dataclass(frozen=True)
class DiaryRules:
    change_points: int
    scale_max: int
    scales: tuple[Scale, ...]
    source: str


@dataclass(frozen=True)
class Previous:
    """What was last reported for one symptom code: its status and, if from the diary, score."""

    status: str | None = None
    score: int | None = None


@dataclass(frozen=True)
class DiaryEntry:
    """One symptom report to record."""

    code: str
    date: date
    status: str
    score: int

    @property
    def note(self) -> str:
        return score_note(self.score, load_diary_rules().scale_max)


class DiaryError(ValueError):
    """The diary data file is inconsistent with the knowledge base."""


@cache
def load_diary_rules() -> DiaryRules:
    """The shipped mapping (cached: it is immutable)."""
    text = resources.files(__package__).joinpath("data/diary.toml").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    scales = tuple(
        Scale(field=s["field"], label=s["label"], hint=s["hint"], code=s["code"])
        for s in doc["scale"]
    )
    return DiaryRules(
        change_points=int(doc["change_points"]),
        scale_max=int(doc["scale_max"]),
        scales=scales,
        source=str(doc["source"]),
    )


def check_rules(rules: DiaryRules, knowledge: Knowledge) -> None:
    """Every scale feeds a symptom code the contract knows; a typo fails at start-up."""
    known = {s.code for s in knowledge.symptoms}
    for scale in rules.scales:
        if scale.code not in known:
            raise DiaryError(f"diary scale {scale.field!r}: unknown symptom code {scale.code!r}")
    if not 0 < rules.change_points <= rules.scale_max:
        raise DiaryError("diary: change_points must lie between 1 and scale_max")


def diary_status(
    score: int, previous: Previous, rules: DiaryRules, *, neurological: bool = False
) -> str | None:
    """The status a score reports, given the last report of the same symptom (None: nothing).

    A plateau after improvement is ``stable`` (no further improvement), except for a
    neurological symptom: there ``stable`` ends alternate-day loading, and that judgement is the
    clinician's, so the diary records ``present`` and leaves it to the review.
    """
    unresolved = previous.status is not None and previous.status != "resolved"
    if score == 0:
        return "resolved" if unresolved else None
    if not unresolved or previous.score is None:
        return "present"
    if score >= previous.score + rules.change_points:
        return "worsening"
    if score <= previous.score - rules.change_points:
        return "improving"
    if previous.status in _SETTLING and not neurological:
        return "stable"
    return "present"


def diary_entries(
    scores: Mapping[str, int | None],
    history: Mapping[str, Previous],
    on: date,
    rules: DiaryRules,
    knowledge: Knowledge,
) -> list[DiaryEntry]:
    """The reports one diary entry makes, in scale order; unanswered scales record nothing."""
    out: list[DiaryEntry] = []
    for scale in rules.scales:
        score = scores.get(scale.field)
        if score is None:
            continue
        neurological = knowledge.symptom(scale.code).neurological
        previous = history.get(scale.code, Previous())
        status = diary_status(score, previous, rules, neurological=neurological)
        if status is not None:
            out.append(DiaryEntry(scale.code, on, status, score))
    return out


def parse_scores(
    form: Mapping[str, str], rules: DiaryRules
) -> tuple[dict[str, int | None], dict[str, str]]:
    """Form text to scores; errors keyed by field name, in words a patient understands."""
    scores: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for scale in rules.scales:
        raw = form.get(scale.field, "").strip()
        if raw == "":
            scores[scale.field] = None
            continue
        if not raw.isdigit() or not 0 <= int(raw) <= rules.scale_max:
            errors[scale.field] = f"Choose a whole number from 0 to {rules.scale_max}."
            continue
        scores[scale.field] = int(raw)
    return scores, errors


def score_note(score: int, scale_max: int) -> str:
    return f"diary score {score}/{scale_max}"


def score_from_note(note: str | None) -> int | None:
    """The diary score kept in a record's note, if the record came from the diary."""
    if not note:
        return None
    match = _NOTE.search(note)
    return int(match.group(1)) if match else None


def latest_by_code(reports: Iterable[tuple[str, date, str, str | None]]) -> dict[str, Previous]:
    """``(code, date, status, note)`` reports to the latest ``Previous`` per code.

    Reports are taken in the order given for equal dates, so pass them in recording order.
    """
    latest: dict[str, tuple[date, Previous]] = {}
    for code, day, status, note in reports:
        seen = latest.get(code)
        if seen is None or day >= seen[0]:
            latest[code] = (day, Previous(status=status, score=score_from_note(note)))
    return {code: prev for code, (_, prev) in latest.items()}


NOTHING_TO_RECORD = (
    "Nothing to record: choose a score for at least one symptom (a 0 is recorded only for a "
    "symptom you reported before)."
)


def save_diary(
    records: RecordsService,
    who: Principal,
    patient_id: str,
    on: date,
    scores: Mapping[str, int | None],
) -> list[StoredRecord[SymptomIn]]:
    """Store one diary entry: each answered scale's report, compared with the last report of
    the same symptom. All are stored or none; ``InvalidInput`` when nothing would be recorded
    (every scale blank, or a 0 for a symptom never reported), or when the service refuses one
    (its errors name the entry, ``[1].date``)."""
    rules = load_diary_rules()
    stored = records.list_records(who, patient_id, KINDS["symptoms"])
    stored.sort(key=lambda r: (r.data.date, r.recorded_at))
    history = latest_by_code((r.data.code, r.data.date, r.data.status, r.data.note) for r in stored)
    entries = diary_entries(scores, history, on, rules, records.knowledge)
    if not entries:
        raise InvalidInput([field_error("", NOTHING_TO_RECORD, "nothing_to_record")])
    reports = [SymptomIn(code=e.code, date=e.date, status=e.status, note=e.note) for e in entries]
    return records.add_records(who, patient_id, reports)
