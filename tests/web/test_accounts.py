"""Accounts in the web UI: change my password (everyone) and the admins' users page.

Each form is tried as intended and as attacked: another role posting to the admin form, a
cross-site post, a wrong current password. Nothing an attack tries may change anything.
"""

from __future__ import annotations

import html as html_lib
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from b12plan.app import Services
from b12plan.service import Principal
from b12plan.store import models
from tests.web.conftest import ADMIN, CLINICIAN, PATIENT, browser_client, sign_in

NEW_PASSWORD = "copper kettle under the stairs"
EVIL = "https://evil.example"


def signed_in(app: FastAPI, credentials: tuple[str, str]) -> TestClient:
    return sign_in(browser_client(app), credentials)


def is_signed_in(client: TestClient, page: str) -> bool:
    response = client.get(page, follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def can_sign_in(app: FastAPI, username: str, password: str) -> bool:
    response = browser_client(app).post(
        "/login", data={"username": username, "password": password}, follow_redirects=False
    )
    return response.status_code == 303


def audit_actions(services: Services, username: str) -> list[str]:
    with services.db.reading() as session:
        user_id = session.scalar(select(models.User.id).where(models.User.username == username))
        return list(
            session.scalars(
                select(models.AuditEntry.action)
                .where(models.AuditEntry.entity_type == "user")
                .where(models.AuditEntry.entity_id == user_id)
                .order_by(models.AuditEntry.id)
            )
        )


def active(services: Services, username: str) -> bool:
    return services.auth.get_user(Principal.system("tests"), username).active


def error_summary(page: str) -> list[str]:
    match = re.search(r'<div class="error-summary".*?<ul>(.*?)</ul>', page, re.S)
    assert match, "no error summary"
    items = re.findall(r"<li>(.*?)</li>", match.group(1), re.S)
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", i)).strip() for i in items]


def change(client: TestClient, current: str, new: str, again: str | None = None) -> str:
    response = client.post(
        "/account/password",
        data={
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
        follow_redirects=False,
    )
    if response.status_code == 303:
        return response.headers["location"]
    assert response.status_code == 422, response.status_code
    return response.text


# --- change my password ------------------------------------------------------------------------


def test_the_password_page_labels_every_field_and_never_fills_one_in(
    app: FastAPI,
) -> None:
    page = signed_in(app, PATIENT).get("/account/password").text
    for name, label, complete in (
        ("current_password", "Current password", "current-password"),
        ("new_password", "New password", "new-password"),
        ("new_password_again", "New password again", "new-password"),
    ):
        assert f'<label for="password-{name}">{label}</label>' in page
        tag = re.search(rf'<input type="password" id="password-{name}"[^>]*>', page)
        assert tag, name
        assert f'autocomplete="{complete}"' in tag.group(0)
        assert "value=" not in tag.group(0)
    assert 'href="/account/password" aria-current="page"' in page


def test_changing_my_password_ends_my_other_sessions_and_keeps_this_one(
    app: FastAPI, services: Services
) -> None:
    here, elsewhere = signed_in(app, PATIENT), signed_in(app, PATIENT)
    assert change(here, PATIENT[1], NEW_PASSWORD) == "/account/password?saved=1"
    assert "Your password is changed" in here.get("/account/password?saved=1").text
    assert is_signed_in(here, "/me")
    assert not is_signed_in(elsewhere, "/me")
    assert not can_sign_in(app, PATIENT[0], PATIENT[1])
    assert can_sign_in(app, PATIENT[0], NEW_PASSWORD)
    assert audit_actions(services, PATIENT[0]).count("password") == 1


def test_a_wrong_current_password_is_said_and_changes_nothing(
    app: FastAPI, services: Services
) -> None:
    here, elsewhere = signed_in(app, CLINICIAN), signed_in(app, CLINICIAN)
    page = change(here, "not my password at all", NEW_PASSWORD)
    assert error_summary(page) == ["Current password: Is not your current password"]
    assert 'id="password-current_password" name="current_password"' in page
    assert 'aria-invalid="true"' in page
    assert NEW_PASSWORD not in page and "not my password at all" not in page  # never echoed
    assert is_signed_in(elsewhere, "/clinic")
    assert can_sign_in(app, CLINICIAN[0], CLINICIAN[1])
    assert not can_sign_in(app, CLINICIAN[0], NEW_PASSWORD)
    assert "password" not in audit_actions(services, CLINICIAN[0])


def test_wrong_current_passwords_are_throttled_like_sign_ins(
    app: FastAPI, services: Services
) -> None:
    here = signed_in(app, CLINICIAN)
    for n in range(6):  # five free tries, then the sixth failure blocks the account
        change(here, f"guess number {n}", NEW_PASSWORD)
    blocked = here.post(
        "/account/password",
        data={
            "current_password": CLINICIAN[1],
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
        follow_redirects=False,
    )
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in blocked.text
    assert audit_actions(services, CLINICIAN[0]).count("login-failed") == 6
    assert "password" not in audit_actions(services, CLINICIAN[0])


@pytest.mark.parametrize(
    ("new", "again", "message"),
    [
        ("short one", None, "New password: Must be at least 12 characters"),
        ("password1234", None, "New password: Is one of the most common passwords"),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "New password again: Does not match the new password"),
        ("", None, "New password: Is required"),
    ],
    ids=["too-short", "common", "mismatch", "missing"],
)
def test_a_weak_or_mistyped_new_password_is_refused(
    app: FastAPI, new: str, again: str | None, message: str
) -> None:
    here = signed_in(app, PATIENT)
    summary = error_summary(change(here, PATIENT[1], new, again))
    assert any(item.startswith(message) for item in summary), summary
    assert can_sign_in(app, PATIENT[0], PATIENT[1])


def test_a_cross_site_password_change_is_refused(app: FastAPI) -> None:
    victim = signed_in(app, PATIENT)
    response = victim.post(
        "/account/password",
        data={
            "current_password": PATIENT[1],
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
        headers={"Origin": EVIL},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert can_sign_in(app, PATIENT[0], PATIENT[1])


def test_signing_in_is_needed_to_change_a_password(visitor: TestClient) -> None:
    response = visitor.get("/account/password", follow_redirects=False)
    assert response.headers["location"] == "/login?next=%2Faccount%2Fpassword"
    posted = visitor.post(
        "/account/password", data={"current_password": "x"}, follow_redirects=False
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login")


# --- the admins' users page --------------------------------------------------------------------


def test_the_users_page_lists_the_clinics_users_with_role_and_state(app: FastAPI) -> None:
    admin = signed_in(app, ADMIN)
    page = admin.get("/clinic/users?clinic=demo-clinic").text
    rows = dict(re.findall(r'<tr id="user-([^"]+)">(.*?)</tr>', page, re.S))
    assert {"dr.demo", "pat.demo"} <= set(rows)
    assert "dr.riverside" not in rows  # the other demo clinic
    assert "clinician" in rows["dr.demo"] and "active" in rows["dr.demo"]
    assert 'href="/clinic/users/dr.demo/disable"' in rows["dr.demo"]
    everyone = admin.get("/clinic/users?clinic=all").text
    assert 'id="user-dr.riverside"' in everyone
    assert 'href="/clinic/users/admin.demo/disable"' not in everyone  # not themselves
    assert '<a href="/clinic/users" aria-current="page">Users</a>' in everyone


@pytest.mark.parametrize("who", [CLINICIAN, PATIENT], ids=["clinician", "patient"])
def test_only_admins_open_or_post_the_users_forms(
    app: FastAPI, services: Services, who: tuple[str, str]
) -> None:
    client = signed_in(app, who)
    assert client.get("/clinic/users").status_code == 403
    assert client.get("/clinic/users/pat.demo/disable").status_code == 403
    posted = client.post("/clinic/users/pat.demo/disable", follow_redirects=False)
    assert posted.status_code == 403
    assert active(services, "pat.demo")
    assert "disable" not in audit_actions(services, "pat.demo")


def test_an_admin_disables_a_user_after_confirming_and_their_sessions_end_at_once(
    app: FastAPI, services: Services
) -> None:
    victim_tab, victim_phone = signed_in(app, CLINICIAN), signed_in(app, CLINICIAN)
    admin = signed_in(app, ADMIN)
    confirm = admin.get("/clinic/users/dr.demo/disable")
    assert confirm.status_code == 200
    assert "signed out everywhere at once" in confirm.text
    assert 'action="/clinic/users/dr.demo/disable"' in confirm.text
    assert active(services, "dr.demo")  # opening the confirmation changes nothing
    done = admin.post("/clinic/users/dr.demo/disable", follow_redirects=False)
    assert done.status_code == 303
    assert "saved=disable" in done.headers["location"]
    assert "dr.demo is now disabled." in admin.get(done.headers["location"]).text
    spoofed = admin.get("/clinic/users?saved=disable&user=pat.demo").text
    assert "pat.demo is now enabled." in spoofed  # says the real state, whatever the link says
    assert not active(services, "dr.demo")
    assert not is_signed_in(victim_tab, "/clinic")
    assert not is_signed_in(victim_phone, "/clinic")
    assert not can_sign_in(app, *CLINICIAN)
    admin.post("/clinic/users/dr.demo/enable", follow_redirects=False)
    assert can_sign_in(app, *CLINICIAN)
    changes = [a for a in audit_actions(services, "dr.demo") if a in ("disable", "enable")]
    assert changes == ["disable", "enable"]


def test_a_cross_site_disable_is_refused(app: FastAPI, services: Services) -> None:
    admin = signed_in(app, ADMIN)
    response = admin.post(
        "/clinic/users/dr.demo/disable", headers={"Origin": EVIL}, follow_redirects=False
    )
    assert response.status_code == 403
    assert active(services, "dr.demo")


def test_an_admin_cannot_disable_themselves_and_unknown_users_are_not_found(
    app: FastAPI, services: Services
) -> None:
    admin = signed_in(app, ADMIN)
    refused = admin.post("/clinic/users/admin.demo/disable", follow_redirects=False)
    assert refused.status_code == 403
    assert "cannot disable their own account" in refused.text
    assert active(services, "admin.demo")
    assert admin.get("/clinic/users/nobody.here/disable").status_code == 404
    assert admin.post("/clinic/users/nobody.here/disable").status_code == 404
    assert admin.post("/clinic/users/dr.demo/delete").status_code == 404
    assert active(services, "dr.demo")
