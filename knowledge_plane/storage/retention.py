"""Retention and erasure of the query log, the one deletion its append-only rule allows.

The query service only ever appends to ``query_log``; its trigger refuses UPDATE always and DELETE
to everyone but the retention role (migration 0004): ``SET LOCAL ROLE knowledge_retention`` on
Postgres, whose only rights are SELECT and DELETE on the log; on SQLite, a connection on which
``knowledge_retention()`` answers 1. Each function here deletes in one transaction under that
privilege and returns how many rows went. It touches no other table (not even ``alembic_version``),
so a login that holds the retention role and nothing else can run it.

``purge_query_log`` deletes the tenant's rows older than a cut-off (``KNOWLEDGE_QUERY_LOG_RETENTION_DAYS``
applied by the ``query_log_retention`` schedule); ``erase_query_log`` deletes the rows of one
question (its hash, as logged), of one request id or of one end user, whatever their age.

The end user is logged as ``end_user_hash``: HMAC-SHA256 under ``KNOWLEDGE_QUERY_LOG_END_USER_KEY``
of the id the service knows them by (a bearer JWT's subject, else the ``X-End-User-ID`` header,
else the client address). Keyed, because a plain hash of a short id (a customer number, an IPv4
address) is reversed by hashing every candidate; without the key nobody can test a guess, and with
it the erasure command finds the rows from the id alone. The id is hashed as given, whatever the
channel it came by, so one erasure covers a user whether the chatbot named them by header or by token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
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


def end_user_hash(key: str, end_user: str) -> str:
    """What the query log holds for ``end_user`` (see the module docstring): 32 hex digits of an HMAC."""
    if not key:
        raise ValueError("no key to hash end users with: set KNOWLEDGE_QUERY_LOG_END_USER_KEY")
    return hmac.new(key.encode("utf-8"), end_user.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:32]


def erase_query_log(url: str, tenant_id: str, question_sha256: str | None = None,
                    request_id: str | None = None, end_user_sha: str | None = None) -> int:
    """Delete the tenant's query-log rows of one question hash, one request id or one end user's hash
    (``end_user_hash``); returns how many."""
    given = {name: value for name, value in (("question_sha256", question_sha256), ("request_id", request_id),
                                             ("end_user_hash", end_user_sha)) if value is not None}
    if len(given) != 1:
        raise ValueError("give a question hash, a request id or an end user's hash (one of them)")
    [(name, value)] = given.items()
    column = query_log.c[name]
    with _retention(url) as db:
        return db.execute(query_log.delete().where(query_log.c.tenant_id == tenant_id, column == value)).rowcount
