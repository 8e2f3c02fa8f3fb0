"""The CDS Hooks 2.0 feedback call (https://cds-hooks.hl7.org/2.0/#feedback), validated.

``POST /cds-services/{id}/feedback`` carries ``{"feedback": [...]}``; each item names a card by
its ``uuid``, an ``outcome`` (``accepted`` with the ``acceptedSuggestions`` taken, or
``overridden`` with an optional ``overrideReason``: a Coding and/or a ``userComment``) and the
``outcomeTimestamp``. Everything is checked before anything is recorded; each problem is named by
its JSON path, as the hook calls' errors are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from b12plan.cds_hooks.discovery import override_reasons
from b12plan.cds_hooks.request import RequestError
from b12plan.fhir.outcome import REQUIRED, STRUCTURE, VALUE, error
from b12plan.service.cds import FeedbackItem

MAX_ITEMS = 100
MAX_TEXT = 2000
"""A clinician's comment is kept in full up to this many characters; longer is refused."""
OUTCOMES = ("accepted", "overridden")


def _text(value: object, limit: int = 200) -> bool:
    return isinstance(value, str) and value.strip() != "" and len(value) <= limit


def _timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_feedback(body: object) -> list[FeedbackItem]:
    """The feedback items, or ``RequestError`` listing every problem found."""
    if not isinstance(body, dict):
        raise RequestError([error("", "expected a JSON object", STRUCTURE)])
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise RequestError([error("feedback", "required: a non-empty array", REQUIRED)])
    if len(items) > MAX_ITEMS:
        raise RequestError([error("feedback", f"at most {MAX_ITEMS} items per call", VALUE)])
    problems: list[dict[str, str]] = []
    out: list[FeedbackItem] = []
    offered = {(r["system"], r["code"]) for r in override_reasons()}
    for n, item in enumerate(items):
        at = f"feedback[{n}]"
        before = len(problems)
        if not isinstance(item, dict):
            problems.append(error(at, "expected an object", STRUCTURE))
            continue
        card, outcome = item.get("card"), item.get("outcome")
        if not _text(card, 64):
            problems.append(error(f"{at}.card", "required: the card's uuid", REQUIRED))
        if outcome not in OUTCOMES:
            problems.append(error(f"{at}.outcome", "must be 'accepted' or 'overridden'", VALUE))
        stamp = _timestamp(item.get("outcomeTimestamp"))
        if stamp is None:
            problems.append(
                error(
                    f"{at}.outcomeTimestamp",
                    "required: an ISO 8601 timestamp with its offset (UTC)",
                    REQUIRED if "outcomeTimestamp" not in item else VALUE,
                )
            )
        accepted: list[str] = []
        raw_accepted = item.get("acceptedSuggestions")
        if outcome == "accepted":
            if not isinstance(raw_accepted, list) or not raw_accepted:
                problems.append(
                    error(
                        f"{at}.acceptedSuggestions",
                        "required for 'accepted': the suggestions taken",
                        REQUIRED,
                    )
                )
            else:
                for m, suggestion in enumerate(raw_accepted):
                    sid = suggestion.get("id") if isinstance(suggestion, dict) else None
                    if not _text(sid, 64):
                        problems.append(
                            error(f"{at}.acceptedSuggestions[{m}].id", "required", REQUIRED)
                        )
                    else:
                        accepted.append(str(sid))
            if "overrideReason" in item:
                problems.append(
                    error(f"{at}.overrideReason", "only an 'overridden' card has one", VALUE)
                )
        elif outcome == "overridden" and raw_accepted is not None:
            problems.append(
                error(f"{at}.acceptedSuggestions", "an 'overridden' card accepts none", VALUE)
            )
        detail: dict[str, Any] = {}
        reason = item.get("overrideReason")
        if outcome == "overridden" and reason is not None:
            detail.update(_override_reason(reason, f"{at}.overrideReason", offered, problems))
        if len(problems) > before:
            continue
        assert isinstance(card, str) and isinstance(outcome, str) and stamp is not None
        detail["outcomeTimestamp"] = stamp.astimezone(dt.UTC).isoformat()
        if accepted:
            detail["acceptedSuggestions"] = accepted
        out.append(FeedbackItem(n, card, outcome, tuple(accepted), detail))
    if problems:
        raise RequestError(problems)
    return out


def _override_reason(
    reason: object,
    at: str,
    offered: set[tuple[str, str]],
    problems: list[dict[str, str]],
) -> dict[str, Any]:
    """The reason as the audit keeps it: the Coding, whether b12plan offered it, the comment."""
    if not isinstance(reason, dict):
        problems.append(error(at, "expected an object", STRUCTURE))
        return {}
    out: dict[str, Any] = {}
    coding, comment = reason.get("reason"), reason.get("userComment")
    if coding is None and comment is None:
        problems.append(error(at, "give a reason (a Coding), a userComment, or both", REQUIRED))
    if coding is not None:
        if not isinstance(coding, dict):
            problems.append(error(f"{at}.reason", "expected a Coding object", STRUCTURE))
        else:
            system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
            if not _text(system, 500):
                problems.append(error(f"{at}.reason.system", "required", REQUIRED))
            if not _text(code, 200):
                problems.append(error(f"{at}.reason.code", "required", REQUIRED))
            if display is not None and not _text(display, 500):
                problems.append(error(f"{at}.reason.display", "must be a short text", VALUE))
            if _text(system, 500) and _text(code, 200):
                out["overrideReason"] = {
                    "system": system,
                    "code": code,
                    **({"display": display} if isinstance(display, str) else {}),
                    "offered": (system, code) in offered,
                }
    if comment is not None:
        if not isinstance(comment, str) or len(comment) > MAX_TEXT:
            problems.append(
                error(
                    f"{at}.userComment", f"must be a text of at most {MAX_TEXT} characters", VALUE
                )
            )
        else:
            out["userComment"] = comment
    return out
