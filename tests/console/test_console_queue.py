"""The review queue's keyset pages give the same facts in the same order on the SQL store (one indexed
query) and on a graph store (the contract's list_facts, sorted here): FalkorDB over Bolt stands in for Neo4j."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from knowledge_plane.console.queue import QueueFilter, page
from knowledge_plane.facts.sql_store import SqlFactStore
from tests.facts.servers import ServerUnavailable, bolt_server
from tests.facts.support import make_fact, new_tenant


@pytest.fixture(scope="module")
def bolt_store() -> Iterator:
    from knowledge_plane.facts.neo4j_store import Neo4jFactStore

    try:
        with bolt_server() as uri:
            store = Neo4jFactStore(uri, connection_acquisition_timeout=5)
            yield store
            store.close()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


def facts(tenant: str) -> list:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    out = []
    for i in range(25):
        fact = make_fact(tenant, float(i), "jours", subject=f"pièce {i % 4}", predicate="délai de retour",
                         doc=f"d{i}", fact_type=["DURATION", "SERVICE_LEVEL", "COST"][i % 3],
                         namespace=f"knowledge:ns{i % 2}", status=["proposed", "conflicted", "approved"][i % 3],
                         confidence=round((i * 7 % 10) / 10, 1))
        fact.created_at = fact.updated_at = now - dt.timedelta(days=i)
        out.append(fact)
    return out


def walk(store, tenant: str, wanted: QueueFilter) -> tuple[list[str], int]:
    ids, cursor, total = [], None, None
    while True:
        result = page(store, tenant, wanted, cursor)
        ids += [f.id for f in result.facts]
        total = result.total
        cursor = result.next_cursor
        if cursor is None:
            return ids, total


@pytest.mark.parametrize("wanted", [
    QueueFilter(limit=7),
    QueueFilter(limit=4, sort="newest"),
    QueueFilter(limit=5, sort="confidence", statuses=["proposed", "conflicted", "approved"]),
    QueueFilter(limit=3, sort="subject", namespace="knowledge:ns1"),
    QueueFilter(limit=6, critical=True, min_age_days=5),
], ids=["default", "newest", "confidence-all", "subject-ns1", "critical-older"])
def test_sql_and_graph_stores_page_alike(tmp_path, bolt_store, wanted):
    tenant = new_tenant()
    sql = SqlFactStore(f"sqlite:///{tmp_path / 'facts.db'}")
    seeded = facts(tenant)
    for store in (sql, bolt_store):
        store.upsert_facts(tenant, seeded)
    sql_ids, sql_total = walk(sql, tenant, wanted)
    graph_ids, graph_total = walk(bolt_store, tenant, wanted)
    assert sql_ids == graph_ids and sql_total == graph_total == len(sql_ids) > 0
    assert len(set(sql_ids)) == len(sql_ids)
    by_id = {f.id: f for f in seeded}
    assert all(by_id[i].status in wanted.statuses for i in sql_ids)
    sql.close()
