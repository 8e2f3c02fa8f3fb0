"""Random damage to a case never makes the real process crash: exit 0 or 2, never a traceback."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.contract.test_contract_properties import mutated_cases

from .conftest import Run


@settings(max_examples=4, deadline=None, derandomize=True)
@given(mutated_cases(), st.booleans())
def test_mutated_cases_exit_0_or_2(run_cli: Run, doc: object, as_json: bool) -> None:
    args = ["assess", "-", "--json"] if as_json else ["assess", "-"]
    result = run_cli(*args, input=json.dumps(doc))
    assert result.returncode in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    if result.returncode == 2:
        assert result.stdout == ""
        assert all(": " in line for line in result.stderr.splitlines())
    elif as_json:
        assert json.loads(result.stdout)["schema_version"] == 1
