"""Sign-in, tokens and users on a real store."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from b12plan.app import Services
from b12plan.service import (
    AuthService,
    Conflict,
    FixedClock,
    Forbidden,
    InvalidInput,
    Principal,
    Unauthenticated,
)
from b12plan.service.schemas import NewUser
from b12plan.store.models import AuthToken, SignInThrottle, User
from tests.store.support import FAST_HASH, NOW, Staff, World, uid


def test_a_correct_password_gives_a_token_for_that_user(world: World) -> None:
    auth = world.services.auth
    issued = auth.login(world.clinician.username, World.password)
    assert issued.expires_at == NOW + auth.token_ttl
    assert auth.current_user(issued.access_token) == world.clinician


@pytest.mark.parametrize("username", ["nobody-here", "", "x" * 300, "bad\x00name"])
def test_an_unknown_user_is_refused_like_a_wrong_password(world: World, username: str) -> None:
    auth = world.services.auth
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        auth.login(username, World.password)
    with pytest.raises(Unauthenticated, match="wrong username or password"):
        auth.login(world.clinician.username, "not the password")


def test_only_digests_of_tokens_and_argon2_hashes_of_passwords_are_stored(world: World) -> None:
    issued = world.services.auth.login(world.clinician.username, World.password)
    with world.services.db.reading() as session:
        tokens = session.scalars(select(AuthToken.token_hash)).all()
        user = session.get(User, world.clinician.user_id)
    assert issued.access_token not in tokens
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert World.password not in user.password_hash


def test_logout_revokes_and_tokens_expire(staff: Staff, world: World) -> None:
    auth = world.services.auth
    issued = auth.login(world.patient.username, World.password)
    auth.logout(issued.access_token)
    assert auth.current_user(issued.access_token) is None
    auth.logout(issued.access_token)  # harmless twice

    fresh = auth.login(world.patient.username, World.password)
    tomorrow = AuthService(
        world.services.db,
        clock=FixedClock(NOW + auth.token_ttl + dt.timedelta(seconds=1)),
        password_hash=FAST_HASH,
    )
    assert auth.current_user(fresh.access_token) == world.patient
    assert tomorrow.current_user(fresh.access_token) is None


def test_users_are_managed_by_admins_with_their_links_checked(
    services: Services, staff: Staff
) -> None:
    auth = services.auth
    name = uid("nurse")[:30]
    new = NewUser(
        username=name, password="long enough to pass", role="clinician", clinic_id=staff.clinic
    )
    with pytest.raises(Forbidden):
        auth.add_user(staff.clinician, new)
    assert auth.add_user(staff.admin, new).clinic_id == staff.clinic
    with pytest.raises(Conflict):
        auth.add_user(staff.admin, new)
    lost = NewUser(username=uid("p")[:30], password="long enough to pass", role="patient")
    with pytest.raises(InvalidInput) as caught:
        auth.add_user(Principal.system("tests"), lost)
    assert [e["loc"] for e in caught.value.errors] == ["patient_id"]
    nowhere = NewUser(username=uid("c")[:30], password="long enough to pass", role="clinician")
    with pytest.raises(InvalidInput) as caught:
        auth.add_user(staff.admin, nowhere)
    assert [e["loc"] for e in caught.value.errors] == ["clinic_id"]


def test_a_patient_user_belongs_to_their_records_clinic(world: World) -> None:
    assert world.patient.clinic_id == world.clinic
    assert world.services.auth.me(world.patient).patient_id == world.patient_id


# --- the sign-in throttle's table, on both backends ----------------------------------------------


def _fail(services: Services, key: str, free: int, now: dt.datetime) -> dt.datetime | None:
    with services.db.writing() as session:
        return services.auth.throttle.record_failure(session, key, free, now)


def test_failures_block_for_a_doubling_delay_up_to_the_cap_and_are_forgotten(
    services: Services,
) -> None:
    limits = services.auth.throttle.limits
    key = "account:" + uid("throttle")
    ends = [_fail(services, key, 2, NOW) for _ in range(15)]
    seconds = [None if end is None else (end - NOW).total_seconds() for end in ends]
    cap = limits.max_delay_seconds
    assert seconds == [None, None, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, cap, cap, cap]
    with services.db.reading() as session:
        row = session.get(SignInThrottle, key)
        assert row is not None and row.failures == 15 and row.blocked_until == ends[-1]
    later = NOW + limits.forget_after + dt.timedelta(seconds=1)
    assert _fail(services, key, 2, later) == ends[-1]  # counting starts again: free, no new block
    with services.db.reading() as session:
        row = session.get(SignInThrottle, key)
        assert row is not None and row.failures == 1 and row.last_failure_at == later


def test_failures_recorded_at_once_by_several_workers_all_count(services: Services) -> None:
    """An upsert: concurrent first failures of a new key neither collide nor get lost."""
    key = "address:" + uid("throttle")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def fail() -> None:
        start.wait(30)
        try:
            _fail(services, key, 20, NOW)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=fail) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []
    with services.db.reading() as session:
        row = session.get(SignInThrottle, key)
        assert row is not None and row.failures == 4 and row.blocked_until is None
