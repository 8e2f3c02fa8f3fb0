"""The service tests run on the web tests' seeded demo database (one seed per session)."""

from tests.web.conftest import seeded_db, services

__all__ = ["seeded_db", "services"]
