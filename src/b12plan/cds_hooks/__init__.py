"""CDS Hooks 2.0 services over the b12plan core: ``patient-view`` and ``order-sign``.

``b12plan.cds_hooks.api.make_router`` gives the HTTP routes; ``CdsServices`` is the same logic
without HTTP, and ``finding_to_card`` the one place a finding becomes a card.
"""

from b12plan.cds_hooks.cards import data_problem_card, finding_to_card, next_dose_card
from b12plan.cds_hooks.discovery import discovery, load_services, prefetch_templates
from b12plan.cds_hooks.hooks import CdsServices, Reply

__all__ = [
    "CdsServices",
    "Reply",
    "data_problem_card",
    "discovery",
    "finding_to_card",
    "load_services",
    "next_dose_card",
    "prefetch_templates",
]
