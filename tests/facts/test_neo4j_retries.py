"""The Bolt fact store keeps its writes whole when the server's connections drop, and retries only what is transient.

FalkorDB's Bolt server is reached through a loopback proxy (tests/flaky_proxy.py) that resets every
open connection and refuses the next ones, as a server restart does to its clients: once between
two writes, once in the middle of a write of many statements. Every fact must then be there
exactly once, since a retried statement may have been committed before its answer was lost.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import urlsplit

import pytest

from knowledge_plane.facts.neo4j_store import Neo4jFactStore
from knowledge_plane.storage.retries import RetryPolicy, neo4j_transient
from tests.facts.support import make_fact, new_tenant
from tests.flaky_proxy import FlakyProxy

FAST = RetryPolicy(attempts=8, deadline_s=60, initial_wait_s=0.05, max_wait_s=0.5)


@pytest.fixture
def flaky(bolt_uri):
    """(store, proxy): a Bolt fact store whose every connection goes through a FlakyProxy."""
    with FlakyProxy(urlsplit(bolt_uri).port) as proxy:
        store = Neo4jFactStore(f"bolt://127.0.0.1:{proxy.port}", connection_acquisition_timeout=1, retry=FAST)
        yield store, proxy
        store.close()


def facts(tenant: str, n: int) -> list:
    return [make_fact(tenant, 0.9 + i / 1000, subject=f"service {i}", doc=f"sla-{i}") for i in range(n)]


def entity_links(store: Neo4jFactStore, tenant: str) -> int:
    rows = store._run("MATCH (f:Fact)-[:ABOUT]->(e:Entity) WHERE f.tenant_id = $tenant RETURN count(*) AS n",
                      read=True, tenant=tenant)
    return int(rows[0]["n"])


def test_a_write_after_the_server_dropped_every_connection_is_retried_and_logged(flaky, caplog):
    store, proxy = flaky
    tenant = new_tenant()
    store.upsert_facts(tenant, facts(tenant, 3))
    proxy.sever()
    proxy.fail_next(2)
    with caplog.at_level(logging.WARNING, logger="knowledge_plane.storage.retries"):
        new = store.upsert_facts(tenant, facts(tenant, 10))
    assert len(new) == 7  # the first three were already there
    assert store.count_facts(tenant, "status") == {"proposed": 10}
    assert entity_links(store, tenant) == 10
    retries = [r.getMessage() for r in caplog.records]
    assert retries and all(m.startswith("neo4j ") for m in retries)
    assert proxy.dropped == 2


def test_connections_reset_in_the_middle_of_a_write_leave_every_fact_once(flaky, caplog):
    store, proxy = flaky
    tenant = new_tenant()
    items = facts(tenant, 150)  # FalkorDB takes ~3 KB of parameters per statement: dozens of statements
    start = proxy.bytes_up

    def restart_mid_write() -> None:
        while proxy.bytes_up - start < 20_000:  # well into the write, well before its end
            threading.Event().wait(0.005)
        proxy.sever()
        proxy.fail_next(1)

    watcher = threading.Thread(target=restart_mid_write, daemon=True)
    watcher.start()
    with caplog.at_level(logging.WARNING, logger="knowledge_plane.storage.retries"):
        new = store.upsert_facts(tenant, items)
    watcher.join(timeout=5)
    assert not watcher.is_alive() and caplog.records, "the connections were not reset during the write"
    assert sorted(new) == sorted(f.id for f in items)
    assert store.count_facts(tenant, "status") == {"proposed": 150}
    assert entity_links(store, tenant) == 150
    store.append_audit(tenant, [])  # and the store is usable as before
    assert len(store.get_facts(tenant, [f.id for f in items])) == 150


def test_retries_stop_after_the_policys_attempts(flaky):
    store, proxy = flaky
    store.retry = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.02)
    proxy.sever()
    proxy.fail_next(1000)
    with pytest.raises(Exception) as raised:
        store.get_facts(new_tenant(), ["x"])
    assert neo4j_transient(raised.value)


def test_neo4j_errors_that_would_fail_again_are_not_transient():
    from neo4j.exceptions import (
        ClientError,
        CypherSyntaxError,
        IncompleteCommit,
        ServiceUnavailable,
        SessionExpired,
        TransientError,
    )

    assert neo4j_transient(ServiceUnavailable("gone"))
    assert neo4j_transient(SessionExpired("expired"))
    assert neo4j_transient(IncompleteCommit("unknown outcome"))  # the store's statements are idempotent
    transient = TransientError._hydrate_neo4j(code="Neo.TransientError.Transaction.DeadlockDetected", message="x")
    assert neo4j_transient(transient)
    syntax = CypherSyntaxError._hydrate_neo4j(code="Neo.ClientError.Statement.SyntaxError", message="x")
    assert not neo4j_transient(syntax)
    assert not neo4j_transient(ClientError("refused"))
    assert not neo4j_transient(ValueError("parameters too large for FalkorDB"))
