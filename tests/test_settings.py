"""Settings from the environment: each one read, each one kept, a clinic's knowledge copy used.

``settings_for`` (the CLI's ``--database-url``) once rebuilt ``Settings`` field by field and
dropped ``cds_fhir_servers``; the test below fails for any field it does not carry, including
fields added later (it walks ``dataclasses.fields``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from b12plan.app import Settings, SettingsError, build_services, create_app
from b12plan.cli.records import settings_for
from b12plan.knowledge import load_knowledge
from tests.knowledge_copy import CLINIC_VERSION, clinic_copy

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx; not about this code
    from fastapi.testclient import TestClient


def _every_setting_changed(tmp_path: Path) -> dict[str, str]:
    """A value other than the default for every ``B12PLAN_*`` setting."""
    return {
        "B12PLAN_DATABASE_URL": f"sqlite:///{tmp_path / 'riverside.db'}",
        "B12PLAN_TODAY": "2026-03-01",
        "B12PLAN_TOKEN_TTL_HOURS": "8",
        "B12PLAN_COOKIE_SECURE": "0",
        "B12PLAN_CDS_FHIR_SERVERS": "https://ehr.riverside.example/fhir",
        "B12PLAN_KNOWLEDGE_DIR": str(clinic_copy(tmp_path / "knowledge")),
        "B12PLAN_DEFAULT_JURISDICTION": "US",
        "B12PLAN_CDS_CLIENTS": str(_one_trusted_ehr(tmp_path / "cds-clients.toml")),
        "B12PLAN_CDS_PUBLIC_URL": "https://b12.riverside.example",
        "B12PLAN_REMINDER_MAX_ATTEMPTS": "7",
        "B12PLAN_DEV": "1",
        "B12PLAN_SESSION_IDLE_MINUTES": "20",
        "B12PLAN_MAX_BODY_BYTES": "500000",
        "B12PLAN_MAX_IMPORT_BYTES": "9000000",
        "B12PLAN_ALLOWED_HOSTS": "b12.riverside.example",
        "B12PLAN_THROTTLE_DELAY_SECONDS": "2",
    }


def _one_trusted_ehr(path: Path) -> Path:
    path.write_text(
        "[[client]]\n"
        'iss = "https://ehr.riverside.example"\n'
        'jwks_url = "https://ehr.riverside.example/.well-known/jwks.json"\n',
        encoding="utf-8",
    )
    return path


def test_database_url_on_the_command_line_replaces_only_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _every_setting_changed(tmp_path).items():
        monkeypatch.setenv(name, value)
    from_env = Settings.from_env()
    defaults = Settings()
    other_url = f"sqlite:///{tmp_path / 'other.db'}"

    carried = settings_for(other_url)

    assert carried.database_url == other_url
    for field in dataclasses.fields(Settings):
        if field.name == "database_url":
            continue
        assert getattr(from_env, field.name) != getattr(defaults, field.name), (
            f"{field.name}: give it a non-default value in _every_setting_changed"
            " so this test can see whether it is carried"
        )
        assert getattr(carried, field.name) == getattr(from_env, field.name), field.name


def test_no_database_url_on_the_command_line_keeps_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _every_setting_changed(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert settings_for(None) == Settings.from_env()


def test_a_missing_knowledge_folder_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {"B12PLAN_KNOWLEDGE_DIR": str(tmp_path / "not-there")}
    with pytest.raises(SettingsError, match=r"^B12PLAN_KNOWLEDGE_DIR: no such directory: "):
        Settings.from_env(env)


def test_the_clinics_reviewed_copy_is_what_every_channel_uses(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'riverside.db'}",
        knowledge_dir=clinic_copy(tmp_path / "knowledge"),
    )
    services = build_services(settings)
    try:
        assert services.knowledge.version == CLINIC_VERSION
        assert services.records.knowledge is services.knowledge
        health = TestClient(create_app(services=services)).get("/api/v1/health").json()
        assert health["knowledge_version"] == CLINIC_VERSION
    finally:
        services.db.dispose()


def test_without_a_copy_the_shipped_knowledge_is_used(tmp_path: Path) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    try:
        assert services.knowledge.version == load_knowledge().version
    finally:
        services.db.dispose()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "monitoring.toml").unlink(), r"monitoring\.toml: missing"),
        (
            lambda d: (d / "protocols.toml").write_text('version = "x"\n[[protocol]\n'),
            r"protocols\.toml: ",
        ),
        (
            lambda d: (d / "rules.toml").write_text(
                (d / "rules.toml").read_text().replace(CLINIC_VERSION, "2027.1.1")
            ),
            r"rules\.toml: version '2027\.1\.1' differs",
        ),
    ],
    ids=["a-file-missing", "a-file-broken", "versions-mixed"],
)
def test_a_damaged_copy_stops_start_up_naming_the_variable_and_the_file(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    copy = clinic_copy(tmp_path / "knowledge")
    damage(copy)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", knowledge_dir=copy)
    with pytest.raises(SettingsError, match=r"^B12PLAN_KNOWLEDGE_DIR: .*" + message):
        build_services(settings)
