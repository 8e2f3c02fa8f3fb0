"""Contract documents (what the tests write cases in) to FHIR and back, through the one writer
(``case_to_bundle``) and the one reader (``import_bundle``): the document is parsed at this edge,
as an entry point would, and the read ``Case`` is written back as a document to compare."""

from __future__ import annotations

from datetime import date
from typing import Any

from b12plan.contract import case_to_dict, parse_case
from b12plan.core.knowledge import Knowledge
from b12plan.fhir import case_to_bundle, import_bundle
from b12plan.knowledge import load_knowledge

K = load_knowledge()


def bundle_of(document: dict[str, Any], *, knowledge: Knowledge = K, **kwargs: Any) -> Any:
    """A contract case document as the FHIR Bundle b12plan exports (``contract.CaseError`` for
    a document the contract refuses)."""
    return case_to_bundle(parse_case(document, knowledge), knowledge=knowledge, **kwargs)


def read_back(
    bundle: object, *, as_of: date, knowledge: Knowledge = K, **kwargs: Any
) -> dict[str, Any]:
    """A Bundle read strictly (as CDS Hooks reads a record), as a contract case document."""
    imported = import_bundle(bundle, as_of=as_of, knowledge=knowledge, partial=False, **kwargs)
    return case_to_dict(imported.case)
