"""The query log's retention: its rows may be deleted by the retention job alone, never updated.

Postgres: DELETE passes the append-only trigger only when the current role is ``knowledge_retention``
(created here, NOLOGIN, granted SELECT and DELETE on query_log and nothing else); the retention job
takes it with ``SET LOCAL ROLE``, which only its members can (``GRANT knowledge_retention TO <login>``,
a DBA's decision; the query service's role is never a member). Creating the role needs CREATEROLE:
without it, create the role first and the migration keeps it.

SQLite has no roles: the trigger lets a DELETE through when the connection's ``knowledge_retention()``
function answers 1. Every registry connection defines it as 0 (knowledge_plane/storage/registry.py);
the retention job's connection alone defines it as 1 (knowledge_plane/storage/retention.py), and a
connection that defines nothing (the sqlite3 shell) fails on the unknown function. Whoever can
write the file can do anything with it anyway: on SQLite this guards against mistakes, not people.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLE = "knowledge_retention"

_UPGRADE = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS query_log_no_delete",
        "CREATE TRIGGER query_log_no_delete BEFORE DELETE ON query_log WHEN knowledge_retention() = 0 "
        "BEGIN SELECT RAISE(ABORT, 'query_log is append-only (only the retention job deletes)'); END",
    ],
    "postgresql": [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
        f"THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$",
        f"GRANT SELECT, DELETE ON query_log TO {ROLE}",
        "CREATE OR REPLACE FUNCTION query_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN IF TG_OP = 'DELETE' AND current_user = '{ROLE}' THEN RETURN OLD; END IF; "
        f"RAISE EXCEPTION 'query_log is append-only (only the role {ROLE} deletes)'; END $$",
    ],
}

_DOWNGRADE = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS query_log_no_delete",
        "CREATE TRIGGER query_log_no_delete BEFORE DELETE ON query_log "
        "BEGIN SELECT RAISE(ABORT, 'query_log is append-only'); END",
    ],
    "postgresql": [
        f"REVOKE ALL ON query_log FROM {ROLE}",  # the role itself is the cluster's: other databases may use it
        "CREATE OR REPLACE FUNCTION query_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'query_log is append-only'; END $$",
    ],
}


def upgrade() -> None:
    for statement in _UPGRADE.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    for statement in _DOWNGRADE.get(op.get_bind().dialect.name, []):
        op.execute(statement)
