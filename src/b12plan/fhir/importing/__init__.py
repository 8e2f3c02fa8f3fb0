"""A FHIR R4 Bundle (ours or an EHR's) to a core ``Case``, one module per resource.

``structure`` checks the Bundle is FHIR at all; ``context`` holds what a reading shares (the
patient, references, errors); ``patient``, ``observation``, ``condition``, ``medication``
(concepts, routes, doses, MedicationStatement), ``order`` (MedicationRequest),
``administration`` and ``adverse_event`` each read one kind of resource; ``bundle`` runs them
and the contract's checks (the one parse: the result is the ``Case`` it gives). CarePlans are
b12plan's own output and are not read back.
"""

from b12plan.fhir.importing.bundle import (
    DraftOrder,
    Imported,
    has_draft_orders,
    read_bundle,
    read_draft_orders,
)
from b12plan.fhir.importing.structure import BUNDLE_TYPES, validate_bundle

__all__ = [
    "BUNDLE_TYPES",
    "DraftOrder",
    "Imported",
    "has_draft_orders",
    "read_bundle",
    "read_draft_orders",
    "validate_bundle",
]
