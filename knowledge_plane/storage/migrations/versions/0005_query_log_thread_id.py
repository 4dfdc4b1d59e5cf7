"""query_log.thread_id: the caller's conversation, recorded with each query (Aurora Nexus sends it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all, which may have made it already.
    if "thread_id" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("query_log")}:
        return
    with op.batch_alter_table("query_log") as batch:
        batch.add_column(sa.Column("thread_id", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("query_log") as batch:
        batch.drop_column("thread_id")
