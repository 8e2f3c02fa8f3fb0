"""CDS Hooks 2.0 feedback: an EHR says a card was overridden (and why) or a suggestion accepted;
b12plan records it in the append-only audit log, naming the finding, or refuses with the path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from b12plan.cds_hooks.discovery import override_reason_system, override_reasons
from b12plan.cds_hooks.trust import TrustedClient
from b12plan.service.demo import seed_demo
from b12plan.store import models
from tests.cds_hooks.conftest import PUBLIC, assert_valid, make_app
from tests.cds_hooks.ehr import b12_draft, draft_bundle, hook_request, prefetch_for, scenario_case
from tests.cds_hooks.signing import Ehr, SigningKey, jwks
from tests.store.support import NOW, TODAY, sqlite_database

T = int(NOW.timestamp())
PID = "ehr-patient-9"
CASE = scenario_case("gb-neuro-persisting-on-3-monthly")
PATIENT_VIEW = "b12plan-patient-view"
ORDER_SIGN = "b12plan-order-sign"
STAMP = "2026-06-01T09:31:00Z"


@dataclass
class Clinic:
    client: Any
    services: Any
    ehr: Ehr
    other_ehr: Ehr

    def call(self, service: str, body: dict[str, Any], ehr: Ehr | None = None) -> Any:
        signer = ehr or self.ehr
        return self.client.post(
            f"/cds-services/{service}",
            json=body,
            headers=signer.headers(f"{PUBLIC}/cds-services/{service}"),
        )

    def feedback(self, service: str, body: Any, ehr: Ehr | None = None) -> Any:
        signer = ehr or self.ehr
        url = f"{PUBLIC}/cds-services/{service}/feedback"
        return self.client.post(
            f"/cds-services/{service}/feedback",
            content=json.dumps(body),
            headers={**signer.headers(url), "Content-Type": "application/json"},
        )

    def audit(self) -> list[models.AuditEntry]:
        with self.services.db.reading() as session:
            return list(
                session.scalars(
                    select(models.AuditEntry)
                    .where(models.AuditEntry.entity_type == "cds-card")
                    .order_by(models.AuditEntry.id)
                )
            )


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    key, other = SigningKey("EC", "ward-ehr-1"), SigningKey("RSA", "other-ehr-1")
    clients = (
        TrustedClient(iss="https://ward.example.org", name="Ward EHR", jwks=jwks(key)),
        TrustedClient(iss="https://other.example.org", jwks=jwks(other)),
    )
    with sqlite_database(tmp_path_factory.mktemp("feedback")) as url:
        client, services = make_app(url, clients)
        seed_demo(services.records, services.auth, today=TODAY)
        yield Clinic(
            client,
            services,
            Ehr("https://ward.example.org", key, T),
            Ehr("https://other.example.org", other, T),
        )
        services.db.dispose()


def patient_view_cards(clinic: Clinic) -> list[dict[str, Any]]:
    body = hook_request("patient-view", PID, prefetch=prefetch_for(CASE, PID))
    response = clinic.call(PATIENT_VIEW, body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def test_warning_and_critical_cards_offer_coded_override_reasons(clinic: Clinic) -> None:
    cards = patient_view_cards(clinic)
    assert {c["indicator"] for c in cards} >= {"warning", "info"}
    for card in cards:
        assert_valid("card", card)
        if card["indicator"] == "info":
            assert "overrideReasons" not in card
        else:
            assert card["overrideReasons"] == list(override_reasons())
            assert all(r["system"] == override_reason_system() for r in card["overrideReasons"])
            assert all(r["display"] for r in card["overrideReasons"])


def test_an_overridden_card_with_a_reason_is_audited_with_its_finding(clinic: Clinic) -> None:
    card = next(c for c in patient_view_cards(clinic) if c["indicator"] != "info")
    reason = card["overrideReasons"][0]
    before = len(clinic.audit())
    response = clinic.feedback(
        PATIENT_VIEW,
        {
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "overrideReason": {"reason": reason, "userComment": "Seen by haematology."},
                    "outcomeTimestamp": STAMP,
                }
            ]
        },
    )
    assert response.status_code == 200, response.text
    entries = clinic.audit()[before:]
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.action, entry.entity_id, entry.actor) == (
        "cds-overridden",
        card["uuid"],
        "cds-client:Ward EHR",
    )
    detail = json.loads(entry.detail or "{}")
    assert detail["finding"] == card["source"]["topic"]["code"]
    assert detail["patient"] == PID and detail["indicator"] == card["indicator"]
    assert detail["overrideReason"] == {**reason, "offered": True}
    assert detail["userComment"] == "Seen by haematology."
    assert detail["outcomeTimestamp"] == "2026-06-01T09:31:00+00:00"


def test_a_reason_of_the_ehrs_own_and_a_bare_override_are_recorded(clinic: Clinic) -> None:
    cards = [c for c in patient_view_cards(clinic) if c["indicator"] != "info"]
    own = {"system": "https://ehr.example/override", "code": "x1", "display": "Other"}
    items = [
        {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": STAMP},
        {
            "card": cards[-1]["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": own},
            "outcomeTimestamp": "2026-06-01T10:31:00+01:00",
        },
    ]
    before = len(clinic.audit())
    assert clinic.feedback(PATIENT_VIEW, {"feedback": items}).status_code == 200
    details = [json.loads(e.detail or "{}") for e in clinic.audit()[before:]]
    assert "overrideReason" not in details[0]
    assert details[1]["overrideReason"] == {**own, "offered": False}
    assert details[1]["outcomeTimestamp"] == "2026-06-01T09:31:00+00:00"


def test_an_accepted_suggestion_of_an_order_sign_card_is_audited(clinic: Clinic) -> None:
    draft = b12_draft(PID, dose=1, unit="mg", route_snomed="78421000", every=3, period_unit="mo")
    body = hook_request(
        "order-sign", PID, prefetch=prefetch_for(CASE, PID), draftOrders=draft_bundle(draft)
    )
    response = clinic.call(ORDER_SIGN, body)
    assert response.status_code == 200, response.text
    card = next(c for c in response.json()["cards"] if c.get("suggestions"))
    suggestion = card["suggestions"][0]["uuid"]
    before = len(clinic.audit())
    response = clinic.feedback(
        ORDER_SIGN,
        {
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "accepted",
                    "acceptedSuggestions": [{"id": suggestion}],
                    "outcomeTimestamp": STAMP,
                }
            ]
        },
    )
    assert response.status_code == 200, response.text
    (entry,) = clinic.audit()[before:]
    assert entry.action == "cds-accepted"
    assert json.loads(entry.detail or "{}")["acceptedSuggestions"] == [suggestion]


def test_feedback_on_a_card_never_given_to_the_caller_is_refused(clinic: Clinic) -> None:
    card = patient_view_cards(clinic)[0]["uuid"]
    item = {"card": card, "outcome": "overridden", "outcomeTimestamp": STAMP}
    before = len(clinic.audit())
    for service, ehr, uuid in (
        (PATIENT_VIEW, clinic.other_ehr, card),  # another EHR's feedback on our card
        (ORDER_SIGN, clinic.ehr, card),  # the card of another service
        (PATIENT_VIEW, clinic.ehr, "4e0a3a1e-3283-4575-ab82-028d55fe2719"),  # never issued
    ):
        response = clinic.feedback(service, {"feedback": [{**item, "card": uuid}]}, ehr)
        assert response.status_code == 400, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == ["feedback[0].card"]
    assert len(clinic.audit()) == before


def test_a_suggestion_not_on_the_card_is_refused_and_nothing_is_recorded(clinic: Clinic) -> None:
    cards = [c for c in patient_view_cards(clinic) if c["indicator"] != "info"]
    items = [
        {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": STAMP},
        {
            "card": cards[0]["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "made-up"}],
            "outcomeTimestamp": STAMP,
        },
    ]
    before = len(clinic.audit())
    response = clinic.feedback(PATIENT_VIEW, {"feedback": items})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["feedback[1].acceptedSuggestions[0].id"]
    assert len(clinic.audit()) == before  # all or nothing


GOOD = {"card": "c", "outcome": "overridden", "outcomeTimestamp": STAMP}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([], None),
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": [GOOD] * 101}, "feedback"),
        ({"feedback": ["x"]}, "feedback[0]"),
        ({"feedback": [{**GOOD, "card": None}]}, "feedback[0].card"),
        ({"feedback": [{**GOOD, "card": "x" * 65}]}, "feedback[0].card"),
        ({"feedback": [{**GOOD, "outcome": "ignored"}]}, "feedback[0].outcome"),
        ({"feedback": [{**GOOD, "outcomeTimestamp": None}]}, "feedback[0].outcomeTimestamp"),
        (
            {"feedback": [{**GOOD, "outcomeTimestamp": "2026-06-01T09:31:00"}]},
            "feedback[0].outcomeTimestamp",
        ),
        (
            {"feedback": [{**GOOD, "outcomeTimestamp": "yesterday"}]},
            "feedback[0].outcomeTimestamp",
        ),
        (
            {"feedback": [{**GOOD, "outcome": "accepted"}]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {"feedback": [{**GOOD, "outcome": "accepted", "acceptedSuggestions": [{}]}]},
            "feedback[0].acceptedSuggestions[0].id",
        ),
        (
            {"feedback": [{**GOOD, "acceptedSuggestions": [{"id": "s"}]}]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {
                "feedback": [
                    {
                        **GOOD,
                        "outcome": "accepted",
                        "acceptedSuggestions": [{"id": "s"}],
                        "overrideReason": {"userComment": "no"},
                    }
                ]
            },
            "feedback[0].overrideReason",
        ),
        ({"feedback": [{**GOOD, "overrideReason": "busy"}]}, "feedback[0].overrideReason"),
        ({"feedback": [{**GOOD, "overrideReason": {}}]}, "feedback[0].overrideReason"),
        (
            {"feedback": [{**GOOD, "overrideReason": {"reason": {"system": "s"}}}]},
            "feedback[0].overrideReason.reason.code",
        ),
        (
            {"feedback": [{**GOOD, "overrideReason": {"reason": ["s", "c"]}}]},
            "feedback[0].overrideReason.reason",
        ),
        (
            {"feedback": [{**GOOD, "overrideReason": {"userComment": "x" * 2001}}]},
            "feedback[0].overrideReason.userComment",
        ),
    ],
)
def test_a_malformed_feedback_body_is_a_400_naming_the_field(
    clinic: Clinic, body: Any, path: str | None
) -> None:
    before = len(clinic.audit())
    response = clinic.feedback(PATIENT_VIEW, body)
    assert response.status_code == 400, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    expressions = [i.get("expression", [""])[0] for i in outcome["issue"]]
    assert (path or "") in expressions or (path is None and expressions == [""]), expressions
    assert len(clinic.audit()) == before


def test_feedback_that_is_not_json_or_for_no_service_is_refused(clinic: Clinic) -> None:
    url = f"{PUBLIC}/cds-services/{PATIENT_VIEW}/feedback"
    response = clinic.client.post(
        f"/cds-services/{PATIENT_VIEW}/feedback",
        content=b"{not json",
        headers={**clinic.ehr.headers(url), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    response = clinic.feedback("no-such-service", {"feedback": [GOOD]})
    assert response.status_code == 404


def test_cards_are_logged_once_each_with_their_finding(clinic: Clinic) -> None:
    cards = patient_view_cards(clinic)
    with clinic.services.db.reading() as session:
        logged = {
            row.uuid: row
            for row in session.scalars(
                select(models.CdsCardIssued).where(
                    models.CdsCardIssued.uuid.in_([c["uuid"] for c in cards])
                )
            )
        }
        total = session.scalar(select(func.count()).select_from(models.CdsCardIssued))
    assert set(logged) == {c["uuid"] for c in cards}
    for card in cards:
        row = logged[card["uuid"]]
        assert row.code == card["source"].get("topic", {}).get("code")
        assert (row.caller, row.patient_ref, row.service_id) == (
            "iss:https://ward.example.org",
            PID,
            PATIENT_VIEW,
        )
    assert total is not None and total >= len(cards)


def test_a_signed_in_clinician_can_send_feedback_on_their_own_cards(clinic: Clinic) -> None:
    token = clinic.client.post(
        "/api/v1/auth/token", data={"username": "dr.demo", "password": "demo-clinician"}
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    body = hook_request("patient-view", PID, prefetch=prefetch_for(CASE, PID))
    cards = clinic.client.post(f"/cds-services/{PATIENT_VIEW}", json=body, headers=bearer).json()
    card = next(c for c in cards["cards"] if c["indicator"] != "info")
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": STAMP}
    response = clinic.client.post(
        f"/cds-services/{PATIENT_VIEW}/feedback", json={"feedback": [item]}, headers=bearer
    )
    assert response.status_code == 200, response.text
    assert clinic.audit()[-1].actor == "clinician:dr.demo"
    assert clinic.audit()[-1].actor_user_id is not None
    refused = clinic.feedback(PATIENT_VIEW, {"feedback": [item]})  # the EHR was not given it
    assert refused.status_code == 400


def test_deeply_nested_json_is_a_4xx_not_a_crash(clinic: Clinic) -> None:
    """The request guard refuses JSON nested over its limit (422) before the route parses it."""
    deep = b"[" * 50_000 + b"]" * 50_000
    for path in (PATIENT_VIEW, f"{PATIENT_VIEW}/feedback"):
        url = f"{PUBLIC}/cds-services/{path}"
        response = clinic.client.post(
            f"/cds-services/{path}",
            content=deep,
            headers={**clinic.ehr.headers(url), "Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), response.text
