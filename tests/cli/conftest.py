"""Run ``b12plan`` as a real process, as a user or a script would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from b12plan.core.knowledge import Knowledge
from b12plan.knowledge import load_knowledge

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "b12plan" / "examples"

Run = Callable[..., subprocess.CompletedProcess[str]]


def _command() -> list[str]:
    script = Path(sys.executable).parent / "b12plan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "b12plan"]


@pytest.fixture(scope="session")
def run_cli(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``run_cli("assess", path, "--json", input=...)`` -> the finished process (text mode).

    Byte code is cached in a temporary folder shared by the runs, as an installed package's
    would be, so each run costs what a user's does (and the source tree stays untouched).
    """
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_command(), *args],
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=env,
            timeout=60,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge()


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int) -> None:
    """A refusal: the exit code, something on stderr, nothing on stdout, no traceback."""
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip()
    assert "Traceback" not in result.stderr
