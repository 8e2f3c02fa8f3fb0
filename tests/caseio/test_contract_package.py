"""``b12plan.contract`` is the case contract's home; ``b12plan.caseio`` is its old name."""

from __future__ import annotations

import b12plan.caseio as caseio
import b12plan.contract as contract
from b12plan.contract import CaseError, format_loc
from b12plan.service import errors as service_errors


def test_caseio_is_the_contract_package_under_its_old_name() -> None:
    """Code written against ``b12plan.caseio`` (FHIR, the population converter) keeps working."""
    for name in caseio.__all__:
        assert getattr(caseio, name) is getattr(contract, name)


def test_one_path_formatter_and_one_error_shape_for_every_channel() -> None:
    assert service_errors.format_loc is format_loc
    assert service_errors.field_error is contract.field_error
    assert format_loc(("observations", 2, "unit")) == "observations[2].unit"
    assert format_loc(("",)) == ""
    error = CaseError([contract.field_error("symptoms[0].code", "unknown symptom", "unknown")])
    assert error.errors == [
        {"loc": "symptoms[0].code", "msg": "unknown symptom", "type": "unknown"}
    ]
    assert error.lines() == ["symptoms[0].code: unknown symptom"]
