"""query_log.end_user_hash: a keyed hash of each query's end user, so that one user's rows can be erased.

The column holds ``end_user_hash`` of knowledge_plane/storage/retention.py (an HMAC under
``KNOWLEDGE_QUERY_LOG_END_USER_KEY``), never the raw id. Adding a nullable column leaves the
append-only triggers and the retention role's grants of migration 0004 as they are: SQLite's ALTER
TABLE ADD COLUMN keeps the table (and its triggers), and Postgres's GRANT on the table covers new columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted from before migrations was made by create_all, which may have made it already.
    inspector = sa.inspect(op.get_bind())
    if "end_user_hash" not in {c["name"] for c in inspector.get_columns("query_log")}:
        op.add_column("query_log", sa.Column("end_user_hash", sa.String(64)))
    if "ix_query_log_end_user" not in {i["name"] for i in inspector.get_indexes("query_log")}:
        op.create_index("ix_query_log_end_user", "query_log", ["tenant_id", "end_user_hash"])


def downgrade() -> None:
    op.drop_index("ix_query_log_end_user", "query_log")
    # SQLite drops a column in place since 3.35 (no table copy, so the triggers stay)
    op.drop_column("query_log", "end_user_hash")
