"""Retention and erasure of the query log, the one deletion its append-only rule allows.

The query service only ever appends to ``query_log``; its trigger refuses UPDATE always and DELETE
to everyone but the retention role (migration 0004): ``SET LOCAL ROLE knowledge_retention`` on
Postgres, whose only rights are SELECT and DELETE on the log; on SQLite, a connection on which
``knowledge_retention()`` answers 1. Each function here deletes in one transaction under that
privilege and returns how many rows went. It touches no other table (not even ``alembic_version``),
so a login that holds the retention role and nothing else can run it.

``purge_query_log`` deletes the tenant's rows older than a cut-off (``KNOWLEDGE_QUERY_LOG_RETENTION_DAYS``
applied by the ``query_log_retention`` schedule); ``erase_query_log`` deletes the rows of one
question (its hash, as logged) or of one request id, whatever their age. The log records no end
user (actors are API keys, the thread id is not logged), so there is nothing to erase per end user.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from knowledge_plane.storage.registry import query_log

ROLE = "knowledge_retention"  # the role migration 0004 creates


@contextmanager
def _retention(url: str) -> Iterator[sa.Connection]:
    """A transaction holding the retention privilege (committed when the block succeeds)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if engine.dialect.name == "sqlite":
        def allow(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.create_function("knowledge_retention", 0, lambda: 1)
            dbapi_connection.execute("PRAGMA busy_timeout=30000")

        sa.event.listen(engine, "connect", allow)
    try:
        with engine.begin() as db:
            if db.dialect.name == "postgresql":
                db.execute(sa.text(f"SET LOCAL ROLE {ROLE}"))
            yield db
    finally:
        engine.dispose()


def purge_query_log(url: str, tenant_id: str, days: int, now: dt.datetime | None = None) -> int:
    """Delete the tenant's query-log rows older than ``days`` days; returns how many."""
    if days < 1:
        raise ValueError(f"a retention of {days} days would delete today's log; give 1 or more")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    with _retention(url) as db:
        return db.execute(query_log.delete().where(query_log.c.tenant_id == tenant_id,
                                                   query_log.c.at < cutoff)).rowcount


def erase_query_log(url: str, tenant_id: str, question_sha256: str | None = None,
                    request_id: str | None = None) -> int:
    """Delete the tenant's query-log rows of one question hash or one request id; returns how many."""
    if (question_sha256 is None) == (request_id is None):
        raise ValueError("give a question hash or a request id (one of them)")
    column, value = ((query_log.c.question_sha256, question_sha256) if question_sha256 is not None
                     else (query_log.c.request_id, request_id))
    with _retention(url) as db:
        return db.execute(query_log.delete().where(query_log.c.tenant_id == tenant_id, column == value)).rowcount
