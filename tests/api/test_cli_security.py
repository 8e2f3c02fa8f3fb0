"""``b12plan users disable/enable/password`` and ``b12plan audit verify`` on a seeded store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.api.test_cli_records import runner_on


def test_an_operator_disables_enables_and_resets_a_user(tmp_path: Path) -> None:
    run = runner_on(tmp_path / "cli.db")
    assert run("seed-demo").exit_code == 0
    disabled = run("users", "disable", "dr.demo")
    assert disabled.exit_code == 0 and "disabled" in disabled.output
    assert run("users", "enable", "dr.demo").exit_code == 0
    weak = run("users", "password", "dr.demo", "--password-stdin", stdin="password1234\n")
    assert weak.exit_code == 2 and "password: is one of the most common" in weak.output
    reset = run("users", "password", "dr.demo", "--password-stdin", stdin="a fresh long phrase\n")
    assert reset.exit_code == 0, reset.output
    unknown = run("users", "disable", "nobody.here")
    assert unknown.exit_code == 2 and "no user 'nobody.here'" in unknown.output
    verified = run("audit", "verify")
    assert verified.exit_code == 0 and "audit log intact" in verified.output


def test_audit_verify_names_the_first_broken_link(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    run = runner_on(path)
    assert run("seed-demo").exit_code == 0
    with sqlite3.connect(path) as connection:  # someone with the database file
        connection.execute("DROP TRIGGER audit_log_never_changed")
        connection.execute("UPDATE audit_log SET detail = 'nothing happened' WHERE id = 5")
    broken = run("audit", "verify")
    assert broken.exit_code == 1
    assert "entry 5 was changed after it was written" in broken.output
