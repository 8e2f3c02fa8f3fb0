"""Alembic environment for b12plan's store; run through ``b12plan.store.migrate``.

The caller hands over an open connection (``config.attributes["connection"]``), so migrations
use the same engine settings (SQLite pragmas, psycopg driver) as the application.
"""

from __future__ import annotations

from alembic import context

from b12plan.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `b12plan db upgrade` (b12plan.store.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
