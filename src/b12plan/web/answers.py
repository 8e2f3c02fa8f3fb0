"""Plain-language answers to the questions patients ask, from the knowledge base.

Every number and every guideline sentence comes from ``load_knowledge()`` (protocols, finding
rules and advice, monitoring reasons, sources) or from the patient's own assessment; this module
only supplies the plain wording around them. Each answer lists the sources it used, so a patient
or a reviewer can check it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from b12plan.core.assessment import Assessment
from b12plan.core.knowledge import Knowledge, KnowledgeError, Protocol, Source
from b12plan.web.text import human_date as _day
from b12plan.web.text import weeks as _weeks

MONITORING_LABELS = {
    "potassium": "Potassium blood test",
    "fbc_reticulocytes": "Full blood count and reticulocytes",
    "fbc": "Full blood count",
    "neuro_loading_review": "Review of nerve symptoms",
    "symptom_review": "Symptom review",
    "symptom_review_pregnancy": "Symptom review (pregnancy)",
    "end_of_loading_review": "End-of-loading review",
}
"""Plain names for the knowledge base's monitoring items (a test checks none is missing)."""

QUESTIONS = {
    "why-loading": "Why do I need loading injections first?",
    "once-a-month": "What does “once a month” mean?",
    "feel-better": "How long until I feel better?",
    "switch-monthly": "Can I switch to monthly injections now?",
    "monitoring": "What should be checked, and when?",
}


@dataclass(frozen=True)
class Answer:
    id: str
    question: str
    paragraphs: tuple[str, ...]
    sources: tuple[Source, ...]
    personal: bool = False  # at least one paragraph is about this patient's own plan


@dataclass
class _Draft:
    id: str
    paragraphs: list[str] = field(default_factory=list)
    source_ids: list[str] = field(default_factory=list)
    personal: bool = False

    def say(self, text: str, source: str | None = None) -> None:
        self.paragraphs.append(text)
        if source:
            self.cite(source)

    def mine(self, text: str, source: str | None = None) -> None:
        self.say(text, source)
        self.personal = True

    def cite(self, source: str) -> None:
        for part in source.split("+"):
            part = part.strip()
            if part and part not in self.source_ids:
                self.source_ids.append(part)

    def done(self, knowledge: Knowledge) -> Answer:
        by_id = {s.id: s for s in knowledge.sources}
        return Answer(
            id=self.id,
            question=QUESTIONS[self.id],
            paragraphs=tuple(self.paragraphs),
            sources=tuple(by_id[s] for s in self.source_ids if s in by_id),
            personal=self.personal,
        )


def monitoring_label(item: str) -> str:
    return MONITORING_LABELS.get(item, item.replace("_", " ").capitalize())


def patient_answers(assessment: Assessment, knowledge: Knowledge) -> tuple[Answer, ...]:
    """The five answers, personalised to this assessment where it says something about them."""
    protocol = _protocol(assessment, knowledge)
    return tuple(
        draft.done(knowledge)
        for draft in (
            _why_loading(assessment, knowledge, protocol),
            _once_a_month(assessment, knowledge, protocol),
            _feel_better(assessment, knowledge, protocol),
            _switch_monthly(assessment, knowledge, protocol),
            _monitoring(assessment, knowledge),
        )
    )


def _protocol(assessment: Assessment, knowledge: Knowledge) -> Protocol | None:
    if assessment.regimen is None:
        return None
    try:
        return knowledge.protocol(assessment.regimen.protocol_id)
    except KnowledgeError:
        return None


def _why_loading(a: Assessment, k: Knowledge, p: Protocol | None) -> _Draft:
    d = _Draft("why-loading")
    spec = k.finding("MAINTENANCE_WITHOUT_LOADING")
    d.say(
        "Your body stores vitamin B12. When the stores have run low, the first weeks of "
        "injections fill them up again: that is the loading course. Only then do less frequent "
        "top-up (maintenance) injections keep them full.",
    )
    d.say(f"What the guidance says: {spec.rule}", spec.source)
    if p is None or a.regimen is None:
        d.mine(
            "Your own plan is not set yet: your clinic will choose it once your test results "
            "and symptoms are known."
        )
        return d
    if not p.loading or a.regimen.route == "oral":
        d.mine(
            f"Your plan ({p.title}) is B12 taken by mouth: there is no course of loading "
            "injections.",
            p.source,
        )
        return d
    stages = "; then ".join(s.description for s in p.loading)
    d.mine(f"Your plan ({p.title}): loading is {stages}.", p.source)
    for stage in p.loading:
        d.cite(stage.source)
    given = a.regimen.loading.doses_given
    planned = a.regimen.loading.doses_planned
    skipped = "MAINTENANCE_WITHOUT_LOADING" in a.codes()
    if a.regimen.loading.complete:
        d.mine(f"You have finished loading ({given} doses).")
    elif skipped:
        spec = k.finding("MAINTENANCE_WITHOUT_LOADING")
        d.mine(
            "Your injections started at the longer maintenance gaps, without the full loading "
            f"course ({given} of {planned} loading doses). Please talk to your clinic: "
            f"{spec.advice}",
            spec.source,
        )
    elif planned is not None:
        d.mine(f"So far you have had {given} of the {planned} loading doses.")
    else:
        d.mine(
            f"So far you have had {given} loading dose(s). Because your symptoms affect the "
            "nerves, loading goes on until they stop getting better; your clinician judges "
            "when that is."
        )
    return d


def _once_a_month(a: Assessment, k: Knowledge, p: Protocol | None) -> _Draft:
    d = _Draft("once-a-month")
    d.say(
        "“Once a month” (or every 2 to 3 months, depending on the medicine) is the maintenance "
        "rhythm. It keeps your B12 stores topped up after the loading course has refilled them. "
        "It is not how treatment starts.",
        "Seed",
    )
    spec = k.finding("INTERVAL_LONGER_THAN_PROTOCOL")
    d.say(
        "The medicines are different: hydroxocobalamin stays in the body longer than "
        f"cyanocobalamin, so the gap between doses depends on which one you have. {spec.rule}",
        spec.source,
    )
    if p is not None and a.regimen is not None:
        days = a.regimen.maintenance_interval_days
        d.mine(
            f"For you, maintenance is {p.maintenance.description}: one injection every {days} "
            f"days (about {_weeks(days)}).",
            p.maintenance.source,
        )
        if p.maintenance.route_alternatives:
            d.mine(f"Another option your clinic may offer: {p.maintenance.route_alternatives}.")
    if a.injections_on_hold:
        d.mine(
            "Your injections are on hold after an allergic reaction: no dose is planned until "
            "your clinic has reviewed it."
        )
    if a.next_dose is not None:
        w = a.next_dose
        if a.as_of > w.overdue_after:
            late = k.finding("INJECTION_OVERDUE")
            d.mine(
                f"Your next dose is late: it was due on {_day(w.due)}. Please contact your "
                f"clinic to have it as soon as you can. {late.advice}",
                late.source,
            )
        else:
            d.mine(
                f"Each dose has a window. Your next one can be given from {_day(w.earliest)}, "
                f"is due on {_day(w.due)}, and counts as late after {_day(w.overdue_after)}."
            )
    return d


def _feel_better(a: Assessment, k: Knowledge, p: Protocol | None) -> _Draft:
    d = _Draft("feel-better")
    d.say(
        "The blood count is checked first, because it responds first; how you feel is reviewed "
        "later. The guidance your clinic follows times the checks like this:"
    )
    for item in ("fbc_reticulocytes", "fbc", "symptom_review"):
        spec = k.monitoring_spec(item)
        d.say(f"{monitoring_label(item)}: {spec.reason}", spec.source)
    if p is not None and p.loading_end == "symptoms_stop_improving":
        d.mine(
            "Because your symptoms affect the nerves, your loading injections continue until "
            f"they stop getting better ({p.loading[-1].description}).",
            p.loading[-1].source,
        )
    mine = [f"{monitoring_label(m.item)} around {_day(m.due)}" for m in a.monitoring]
    if mine:
        d.mine("Your own check-points: " + "; ".join(mine) + ".")
    worse = k.finding("SYMPTOMS_WORSENING")
    d.say(f"If you feel worse instead of better, tell your clinic. {worse.rule}", worse.source)
    return d


def _switch_monthly(a: Assessment, k: Knowledge, p: Protocol | None) -> _Draft:
    d = _Draft("switch-monthly")
    codes = a.codes()
    regimen = a.regimen
    if a.injections_on_hold:
        d.mine(
            "Not now: your injections are on hold after an allergic reaction. Your clinic will "
            "review it before any further injection."
        )
    elif regimen is None or p is None:
        d.mine(
            "Not yet: there is no treatment plan for you yet, so there is nothing to switch. "
            "Your clinic will decide once your results are known."
        )
    elif regimen.route == "oral" or not p.loading:
        d.mine(
            f"You take B12 by mouth ({p.maintenance.description}), not as injections: there "
            "is no loading course and nothing to switch. Take it as your clinic prescribes.",
            p.maintenance.source,
        )
    elif "MAINTENANCE_WITHOUT_LOADING" in codes and not regimen.loading.complete:
        spec = k.finding("MAINTENANCE_WITHOUT_LOADING")
        d.mine(
            "Your injections started at maintenance gaps without the full loading course, so "
            f"loading is not finished. Please talk to your clinic: {spec.advice}",
            spec.source,
        )
    elif "LOADING_INCOMPLETE" in codes:
        spec = k.finding("LOADING_INCOMPLETE")
        d.mine(
            "Your loading course moved to longer gaps before it was finished. Please talk to "
            f"your clinic: {spec.advice}",
            spec.source,
        )
    elif a.phase in ("untreated", "loading") and not regimen.loading.complete:
        if regimen.loading.doses_planned is not None:
            left = max(regimen.loading.doses_planned - regimen.loading.doses_given, 0)
            d.mine(
                f"Not yet: you have {left} loading dose(s) left before maintenance starts.",
                p.source,
            )
        else:
            d.mine(
                "Not yet: with nerve symptoms, loading continues until they stop getting better. "
                "Your clinician will decide at your review.",
                p.source,
            )
    elif regimen.loading.complete and (
        a.phase == "maintenance" or "READY_FOR_MAINTENANCE" in codes
    ):
        d.mine(
            f"You have finished loading. Your maintenance is {p.maintenance.description} "
            f"(every {regimen.maintenance_interval_days} days), as your clinic prescribes.",
            p.maintenance.source,
        )
    elif a.phase == "stopped":
        d.mine(
            "Your injections appear to have stopped. Please contact your clinic before changing "
            "anything: some causes need injections for life."
        )
    else:
        d.mine(
            "Your clinic decides when loading is finished and maintenance starts; please ask "
            "them at your next review.",
            p.source,
        )
    if "ACTIVE_DEFICIENCY_ON_MAINTENANCE" in codes or "LEVELS_FALLING_BETWEEN_DOSES" in codes:
        d.mine(
            "Your recent results suggest the current gap may be too long for you; your clinic "
            "may suggest more frequent doses rather than fewer."
        )
    fits = k.finding("MAINTENANCE_APPROPRIATE")
    active = k.finding("ACTIVE_DEFICIENCY_ON_MAINTENANCE")
    d.say(f"When longer gaps fit: {fits.rule}", fits.source)
    d.say(f"When they are not enough: {active.rule}", active.source)
    d.say("Only your clinician can change your prescription: please do not change it yourself.")
    return d


def _monitoring(a: Assessment, k: Knowledge) -> _Draft:
    d = _Draft("monitoring")
    if a.monitoring:
        d.mine(
            "Checks planned for you: "
            + "; ".join(
                f"{monitoring_label(m.item)} due {_day(m.due)} ({m.reason.rstrip('.')})"
                for m in a.monitoring
            ),
        )
        for m in a.monitoring:
            d.cite(m.source)
    else:
        d.mine("No checks are outstanding for you at the moment.")
    post = k.finding("POST_INJECTION_SAMPLE")
    d.say(
        "A B12 blood level taken after injections have started mostly shows the injections, "
        f"not your body's stores. {post.rule}",
        post.source,
    )
    back = k.finding("SYMPTOMS_RETURN_BEFORE_DOSE")
    d.say(
        "Keep your symptom diary: tell your clinic if symptoms come back before your next dose "
        f"is due. {back.rule}",
        back.source,
    )
    return d


def source_ids(answers: Iterable[Answer]) -> set[str]:
    return {s.id for a in answers for s in a.sources}
