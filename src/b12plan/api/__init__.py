"""The REST API (FastAPI): thin routers over ``b12plan.service``; errors as problem+json.

``b12plan.app.create_app`` is the one place that builds the services and mounts these routers.
"""

from b12plan.api.access import make_access_router
from b12plan.api.assess import make_assess_router
from b12plan.api.problems import install_problem_handlers
from b12plan.api.records import make_records_router
from b12plan.api.security import make_current_user

__all__ = [
    "install_problem_handlers",
    "make_access_router",
    "make_assess_router",
    "make_current_user",
    "make_records_router",
]
