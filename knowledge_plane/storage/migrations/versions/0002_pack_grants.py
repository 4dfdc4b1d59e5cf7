"""Pack grants: the namespaces a pack's uploads may publish into, and the strongest truth level there.

No row means the default (``knowledge:uploads`` at L4, in code): existing packs keep publishing
into ``knowledge:uploads`` only, at L4 — an operator grants more with ``knowledge packs allow``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pack_grants",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("pack_id", sa.String(64), primary_key=True),
        sa.Column("namespace", sa.String(128), primary_key=True),
        sa.Column("max_truth_level", sa.String(2), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pack_grants")
