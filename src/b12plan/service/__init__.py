"""The service layer: use cases over the store and the clinical core, with the clock injected.

Entry points (REST API, CLI, web UI) build these once in ``b12plan.app`` and call them:

- ``RecordsService`` (``service.records``): patients, clinical records (add, correct, retract,
  history), the contract case of a stored patient, its assessment, stateless assessment,
  import of a contract case, the audit trail and the worklist.
- ``AuthService`` (``service.auth``): sign-in (bearer token or session cookie), sign-out, the
  current user, users and clinics.
- ``service.schemas``: the typed inputs and outputs; ``service.errors``: the errors every use
  case may raise (rendered as problem+json by the API).

Every method takes the acting ``Principal`` first and enforces access itself.
"""

from b12plan.service.auth import SESSION_COOKIE, AuthService, session_cookie_name
from b12plan.service.clock import Clock, FixedClock, PinnedDayClock, SystemClock
from b12plan.service.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unauthenticated,
)
from b12plan.service.records import RecordsService, StoredRecordInvalid
from b12plan.service.schemas import KINDS, Principal, RecordKind, StoredRecord

__all__ = [
    "KINDS",
    "SESSION_COOKIE",
    "AuthService",
    "Clock",
    "Conflict",
    "FieldError",
    "FixedClock",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PinnedDayClock",
    "Principal",
    "RecordKind",
    "RecordsService",
    "ServiceError",
    "StoredRecord",
    "StoredRecordInvalid",
    "SystemClock",
    "Unauthenticated",
    "session_cookie_name",
]
