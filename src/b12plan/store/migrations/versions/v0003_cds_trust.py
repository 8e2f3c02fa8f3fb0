"""CDS Hooks client trust: the JWT ids seen (replay guard) and the cards issued (for feedback).

Neither table is clinical history: expired token ids and old issued cards are purged, so they get
no append-only triggers. Feedback itself goes to the audit log, which keeps its triggers.

Revision ID: 0003_cds_trust
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_cds_trust"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cds_tokens_seen",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_cds_tokens_seen"),
    )
    op.create_index("ix_cds_tokens_seen_expires_at", "cds_tokens_seen", ["expires_at"])
    op.create_table(
        "cds_cards_issued",
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("hook_instance", sa.String(100), nullable=False),
        sa.Column("patient_ref", sa.Text(), nullable=False),
        sa.Column("code", sa.String(60), nullable=True),
        sa.Column("indicator", sa.String(10), nullable=False),
        sa.Column("caller", sa.String(300), nullable=False),
        sa.Column("suggestions", sa.Text(), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name="pk_cds_cards_issued"),
    )
    op.create_index("ix_cds_cards_issued_issued_at", "cds_cards_issued", ["issued_at"])


def downgrade() -> None:
    op.drop_index("ix_cds_cards_issued_issued_at", table_name="cds_cards_issued")
    op.drop_table("cds_cards_issued")
    op.drop_index("ix_cds_tokens_seen_expires_at", table_name="cds_tokens_seen")
    op.drop_table("cds_tokens_seen")
