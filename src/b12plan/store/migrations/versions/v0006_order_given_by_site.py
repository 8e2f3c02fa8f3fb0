"""An order says who gives it and where, as the contract's prescription does.

The contract's prescription carries an administration's fields, ``given_by`` and ``site``
included; the store had no columns for them, so importing a case whose order named them failed.
Both columns are nullable (every earlier order said neither). SQLite's append-only trigger names
its columns, so it is rebuilt to cover the new ones; PostgreSQL's compares whole rows.

Revision ID: 0006_order_given_by_site
Revises: 0005_contract_v11
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from b12plan.store.migrations.versions.v0005_contract_v11 import _sqlite_version_frozen

revision: str = "0006_order_given_by_site"
down_revision: str | None = "0005_contract_v11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS prescriptions_version_frozen")
    op.add_column("prescriptions", sa.Column("given_by", sa.String(10), nullable=True))
    op.add_column("prescriptions", sa.Column("site", sa.String(500), nullable=True))
    if sqlite:
        _sqlite_version_frozen("prescriptions")


def downgrade() -> None:
    raise RuntimeError(
        "who gives an order and where are clinical history, never dropped by a migration;"
        " restore a backup instead"
    )
