"""The review queue: facts filtered, sorted and paged by keyset, so page 500 costs what page 1 does.

On the SQL fact store the page is one indexed query on the store's own ``facts`` table (read only;
every change still goes through knowledge_plane/facts/review.py). Other stores (Neo4j) go through the store
contract's ``list_facts`` and are sorted and cut here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from knowledge_plane.facts.config import load_rules
from knowledge_plane.facts.model import CONFLICTED, PROPOSED, STATUSES, Fact
from knowledge_plane.facts.queries import canonical_key
from knowledge_plane.facts.sql_store import SqlFactStore, _fact, facts
from knowledge_plane.facts.store import FactStore

# sort name → (column, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "oldest": ("created_at", False),
    "newest": ("created_at", True),
    "subject": ("subject_key", False),
    "confidence": ("confidence", False),
}
MAX_PAGE = 200


class QueueError(ValueError):
    """A filter, sort or cursor the queue cannot use (the message names it)."""


@dataclass
class QueueFilter:
    namespace: str | None = None
    fact_type: str | None = None
    subject: str | None = None
    statuses: Sequence[str] = (PROPOSED, CONFLICTED)
    critical: bool = False
    min_age_days: int | None = None
    sort: str = "oldest"
    limit: int = 50

    def check(self) -> None:
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise QueueError(f"unknown status {bad[0]!r} (one of {', '.join(STATUSES)})")
        if self.sort not in SORTS:
            raise QueueError(f"unknown sort {self.sort!r} (one of {', '.join(SORTS)})")
        if not 1 <= self.limit <= MAX_PAGE:
            raise QueueError(f"limit must be between 1 and {MAX_PAGE}")
        if self.min_age_days is not None and self.min_age_days < 0:
            raise QueueError("age must be a number of days ≥ 0")


@dataclass
class QueuePage:
    facts: list[Fact]
    total: int
    next_cursor: str | None
    filters: dict[str, Any] = field(default_factory=dict)


def _encode(value: Any, fact_id: str) -> str:
    if isinstance(value, dt.datetime):
        value = {"t": value.isoformat()}
    return base64.urlsafe_b64encode(json.dumps([value, fact_id]).encode()).decode()


def _decode(cursor: str) -> tuple[Any, str]:
    try:
        value, fact_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(value, dict):
            value = dt.datetime.fromisoformat(value["t"])
        return value, str(fact_id)
    except (ValueError, TypeError, KeyError) as exc:
        raise QueueError("malformed page cursor: start again from the first page") from exc


def _sort_value(fact: Fact, column: str) -> Any:
    value = getattr(fact, column)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def page(store: FactStore, tenant_id: str, wanted: QueueFilter, cursor: str | None = None) -> QueuePage:
    """One page of the tenant's facts matching ``wanted``, after ``cursor`` (None: the first page)."""
    wanted.check()
    after = _decode(cursor) if cursor else None
    subject_key = canonical_key(wanted.subject, "")[0] if wanted.subject else None
    critical = sorted(load_rules().critical_fact_types) if wanted.critical else None
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=wanted.min_age_days) if wanted.min_age_days else None
    column, descending = SORTS[wanted.sort]
    if isinstance(store, SqlFactStore):
        found, total = _sql_page(store, tenant_id, wanted, subject_key, critical, since, column, descending, after)
    else:
        found, total = _generic_page(store, tenant_id, wanted, subject_key, critical, since, column, descending,
                                     after)
    more = len(found) > wanted.limit
    found = found[:wanted.limit]
    next_cursor = _encode(_sort_value(found[-1], column), found[-1].id) if more and found else None
    return QueuePage(found, total, next_cursor)


def _sql_page(store: SqlFactStore, tenant_id: str, wanted: QueueFilter, subject_key: str | None,
              critical: list[str] | None, since: dt.datetime | None, column: str, descending: bool,
              after: tuple[Any, str] | None) -> tuple[list[Fact], int]:
    where = [facts.c.tenant_id == tenant_id, facts.c.status.in_(list(wanted.statuses))]
    if wanted.namespace:
        where.append(facts.c.namespace == wanted.namespace)
    if wanted.fact_type:
        where.append(facts.c.fact_type == wanted.fact_type)
    if subject_key:
        where.append(facts.c.subject_key == subject_key)
    if critical is not None:
        where.append(facts.c.fact_type.in_(critical))
    if since is not None:
        where.append(facts.c.created_at <= since)
    sort_col = facts.c[column]
    query = sa.select(facts).where(*where)
    if after is not None:
        key = sa.tuple_(sort_col, facts.c.id)
        bound = sa.tuple_(sa.literal(after[0], type_=sort_col.type), sa.literal(after[1], type_=facts.c.id.type))
        query = query.where(key < bound if descending else key > bound)
    order = [sort_col.desc(), facts.c.id.desc()] if descending else [sort_col, facts.c.id]
    with store.engine.connect() as db:
        rows = db.execute(query.order_by(*order).limit(wanted.limit + 1)).all()
        total = db.execute(sa.select(sa.func.count()).select_from(facts).where(*where)).scalar_one()
    return [_fact(r) for r in rows], int(total)


def _generic_page(store: FactStore, tenant_id: str, wanted: QueueFilter, subject_key: str | None,
                  critical: list[str] | None, since: dt.datetime | None, column: str, descending: bool,
                  after: tuple[Any, str] | None) -> tuple[list[Fact], int]:
    found = store.list_facts(tenant_id, namespace=wanted.namespace, statuses=list(wanted.statuses),
                             subject_key=subject_key, fact_type=wanted.fact_type)
    if critical is not None:
        found = [f for f in found if f.fact_type in critical]
    if since is not None:
        found = [f for f in found if f.created_at and _sort_value(f, "created_at") <= since]
    found.sort(key=lambda f: (_sort_value(f, column), f.id), reverse=descending)
    total = len(found)
    if after is not None:
        found = [f for f in found if ((_sort_value(f, column), f.id) < after if descending
                                      else (_sort_value(f, column), f.id) > after)]
    return found[:wanted.limit + 1], total
