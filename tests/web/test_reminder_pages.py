"""The patient's reminder settings and calendar feed, through the real app (TestClient)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient
from ical.calendar_stream import IcsCalendarStream

from b12plan.app import Services, Settings, build_services, create_app
from b12plan.service import Principal
from b12plan.service.schemas import AdministrationIn
from tests.reminders.cases import pernicious_anaemia_case
from tests.reminders.conftest import MovableClock
from tests.web.conftest import FAST_HASH, OVERDUE_ID, PATIENT_ID, TODAY, copy_db


def feed_events(client: TestClient, url: str) -> dict[str, tuple[dt.date, int, str]]:
    """Parsed by ``ical`` (an iCalendar library independent of the ``icalendar`` that writes)."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = IcsCalendarStream.calendar_from_ics(response.text)
    out = {}
    for event in calendar.events:
        start = event.dtstart
        assert isinstance(start, dt.date) and not isinstance(start, dt.datetime)
        out[str(event.uid)] = (start, int(event.sequence or 0), str(event.summary))
    return out


def test_patient_saves_email_reminders_ten_days_ahead(
    patient: TestClient, services: Services
) -> None:
    page = patient.get("/me/settings")
    assert page.status_code == 200 and "Days ahead to remind you to book" in page.text
    response = patient.post(
        "/me/settings",
        data={
            "channel": "email",
            "email": "pat@example.org",
            "lead_days": "10",
            "quiet_start": "21:00",
            "quiet_end": "08:00",
            "time_zone": "Europe/London",
            "language": "en",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    prefs = services.reminders.preferences(Principal.system("t"), PATIENT_ID)
    assert (prefs.channel, prefs.email, prefs.lead_days) == ("email", "pat@example.org", 10)
    assert (prefs.quiet_start, prefs.quiet_end) == ("21:00", "08:00")


def test_bad_settings_come_back_with_the_field_named(patient: TestClient) -> None:
    response = patient.post(
        "/me/settings",
        data={"channel": "email", "email": "", "lead_days": "400", "time_zone": "Mars/Base"},
    )
    assert response.status_code == 422
    for text in ("required for email reminders", "must be from 1 to 42 days", "unknown time zone"):
        assert text in response.text
    assert "<script>" not in response.text and "style=" not in response.text


def test_settings_page_is_for_patients_only(clinician: TestClient) -> None:
    assert clinician.get("/me/settings").status_code == 403
    assert clinician.post("/me/settings", data={"channel": "none"}).status_code == 403


def test_calendar_link_is_shown_once_and_can_be_turned_off(patient: TestClient) -> None:
    made = patient.post("/me/settings/calendar", data={"action": "rotate"})
    assert made.status_code == 200
    url = re.search(r'<code id="feed-url">([^<]+)</code>', made.text)
    assert url is not None and "webcal://" in made.text
    path = "/" + url.group(1).split("/", 3)[3]
    assert patient.get("/me/settings").text.count(path) == 0  # never shown again
    assert feed_events(patient, path)
    again = patient.post("/me/settings/calendar", data={"action": "rotate"})
    new = re.search(r'<code id="feed-url">([^<]+)</code>', again.text)
    assert new is not None and new.group(1) != url.group(1)
    assert patient.get(path).status_code == 404  # the old link stopped working
    patient.post("/me/settings/calendar", data={"action": "revoke"})
    assert patient.get("/" + new.group(1).split("/", 3)[3]).status_code == 404


def test_unknown_or_malformed_feed_secret_is_not_found(client: TestClient) -> None:
    for secret in ("x", "A" * 43, "../../etc/passwd", "%00" * 30):
        assert client.get(f"/calendar/{secret}.ics").status_code == 404


def test_after_a_late_dose_the_same_uids_carry_the_new_dates(
    seeded_db: Path, tmp_path: Path
) -> None:
    """Ada's 3-monthly dose is due on 10 April; she has it ten days late, on 20 April."""
    clock = MovableClock()
    services = build_services(
        Settings(database_url=f"sqlite:///{copy_db(seeded_db, tmp_path)}"),
        clock=clock,
        password_hash=FAST_HASH,
    )
    client = TestClient(create_app(services=services))
    system = Principal.system("tests")
    try:
        clock.set(dt.date(2026, 3, 1))
        document = pernicious_anaemia_case(dt.date(2026, 3, 1))
        document["patient"] = {"sex": "female", "birth_date": "1958-04-02"}
        pid = services.records.import_case(system, document, clinic_id="demo-clinic")
        secret = services.reminders.rotate_calendar_secret(system, pid)
        before = feed_events(client, f"/calendar/{secret}.ics")
        doses_before = {u: v for u, v in before.items() if u.startswith("dose-")}
        assert sorted(v[0] for v in doses_before.values())[0] == dt.date(2026, 4, 10)
        assert all(v[0] >= dt.date(2026, 3, 1) for v in before.values())  # nothing past
        assert not any("_" in v[2] for v in before.values())  # plain titles, no item codes
        raw = client.get(f"/calendar/{secret}.ics").text
        assert "BEGIN:VALARM" in raw and "TRIGGER:-P14D" in raw  # book 14 days ahead

        clock.set(dt.date(2026, 4, 20))
        services.records.add_record(
            system,
            pid,
            AdministrationIn(
                date=dt.date(2026, 4, 20),
                product="hydroxocobalamin",
                dose=1,
                unit="mg",
                route="IM",
                given_by="clinic",
            ),
        )
        after = feed_events(client, f"/calendar/{secret}.ics")
        doses_after = {u: v for u, v in after.items() if u.startswith("dose-")}
        given = min(doses_before.items(), key=lambda kv: kv[1][0])[0]
        assert given not in doses_after  # the dose that was given has left the feed
        kept = set(doses_before) & set(doses_after)
        assert len(kept) == len(doses_before) - 1  # every other planned dose kept its UID
        for uid in kept:
            moved = doses_after[uid][0] - doses_before[uid][0]
            assert moved == dt.timedelta(days=10)  # ... and moved with the late dose
            assert doses_after[uid][1] > doses_before[uid][1]  # under a higher SEQUENCE
    finally:
        services.db.dispose()


def test_patient_on_hold_gets_a_note_not_an_empty_calendar(
    client: TestClient, services: Services
) -> None:
    from b12plan.service.schemas import AdverseEventIn

    system = Principal.system("tests")
    services.records.add_record(system, OVERDUE_ID, AdverseEventIn(date=TODAY, code="anaphylaxis"))
    secret = services.reminders.rotate_calendar_secret(system, OVERDUE_ID)
    events = feed_events(client, f"/calendar/{secret}.ics")
    assert not [u for u in events if u.startswith("dose-")]
    notes = [v for v in events.values() if "on hold" in v[2]]
    assert notes and notes[0][0] == TODAY


def test_clinic_booking_list_and_csv(clinician: TestClient, services: Services) -> None:
    from b12plan.service.schemas import PatientIn

    system = Principal.system("tests")
    current = services.records.get_patient(system, OVERDUE_ID)
    services.records.correct_patient(
        system,
        OVERDUE_ID,
        PatientIn(
            display_name='=HYPERLINK("http://evil.test")',
            sex=current.sex,
            birth_date=current.birth_date,
            jurisdiction=current.jurisdiction,
        ),
        expected_version=current.version,
    )
    page = clinician.get("/clinic/reminders?days=30")
    assert page.status_code == 200 and "Due in the next 30 days" in page.text
    csv_response = clinician.get("/clinic/reminders/booking.csv?days=30")
    assert csv_response.status_code == 200
    assert csv_response.headers["content-type"].startswith("text/csv")
    lines = csv_response.text.splitlines()
    assert lines[0] == "patient_id,name,what,due,earliest,overdue_after"
    row = next(line for line in lines if line.startswith(OVERDUE_ID))
    assert "'=HYPERLINK" in row  # a name that looks like a formula is kept as text
    dna = clinician.get("/clinic/reminders/did-not-attend.csv")
    assert dna.status_code == 200 and dna.text.startswith("patient_id,name,due,reminded_on")


def test_clinic_lists_are_not_for_patients(patient: TestClient) -> None:
    for path in ("/clinic/reminders", "/clinic/reminders/booking.csv"):
        assert patient.get(path).status_code == 403


def test_patient_downloads_their_log_for_the_doctor(patient: TestClient) -> None:
    page = patient.get("/me/export")
    assert page.status_code == 200 and "My B12 log" in page.text
    assert "style=" not in page.text and "<script>" not in page.text
    response = patient.get("/me/export.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert lines[0] == "record,date,what,detail,given_by,site,note"
    assert any(line.startswith("dose,") for line in lines[1:])
    assert any(line.startswith("symptom,") for line in lines[1:])


def test_log_export_is_for_its_patient_only(clinician: TestClient) -> None:
    assert clinician.get("/me/export.csv").status_code == 403


def test_log_export_needs_a_sign_in(visitor: TestClient) -> None:
    assert visitor.get("/me/export.csv", follow_redirects=False).status_code == 303


def test_reminder_api_for_the_patient(patient: TestClient) -> None:
    planned = patient.get(f"/api/v1/patients/{PATIENT_ID}/reminders?days=60")
    assert planned.status_code == 200
    assert all({"kind", "send_on", "target", "title"} <= set(r) for r in planned.json())
    assert patient.get(f"/api/v1/patients/{OVERDUE_ID}/reminders").status_code == 404
    put = patient.put(
        f"/api/v1/patients/{PATIENT_ID}/reminder-settings",
        json={"channel": "email", "email": "pat@example.org", "lead_days": 10},
    )
    assert put.status_code == 200 and put.json()["lead_days"] == 10
    bad = patient.put(
        f"/api/v1/patients/{PATIENT_ID}/reminder-settings",
        json={"channel": "email", "email": "nope", "lead_days": 99},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert {e["loc"] for e in bad.json()["errors"]} >= {"email", "lead_days"}
    unknown = patient.put(
        f"/api/v1/patients/{PATIENT_ID}/reminder-settings", json={"colour": "red"}
    )
    assert unknown.status_code == 422
    assert patient.get(f"/api/v1/patients/{PATIENT_ID}/reminder-settings").json()["email"] == (
        "pat@example.org"
    )
