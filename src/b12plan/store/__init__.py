"""Persistence for patient records: SQLAlchemy 2 models, versioned writes, Alembic migrations.

SQLite is the embedded default; PostgreSQL is used when the URL says so. Everything here is
mechanism (tables, transactions, compare-and-set versions, the audit log); who may do what, and
what a record means clinically, live in ``b12plan.service``.
"""

from b12plan.store.database import DEFAULT_URL, Database, DatabaseUrlError, make_engine
from b12plan.store.migrate import current_revision, head_revision, upgrade
from b12plan.store.models import ACTIVE, ENTERED_IN_ERROR, RECORD_MODELS
from b12plan.store.repository import (
    Author,
    RecordNotFound,
    Repository,
    StoreError,
    VersionConflict,
)

__all__ = [
    "ACTIVE",
    "DEFAULT_URL",
    "ENTERED_IN_ERROR",
    "RECORD_MODELS",
    "Author",
    "Database",
    "DatabaseUrlError",
    "RecordNotFound",
    "Repository",
    "StoreError",
    "VersionConflict",
    "current_revision",
    "head_revision",
    "make_engine",
    "upgrade",
]
