"""Fixtures of the fact tests: one store per backend for the session, a fresh tenant per test.

The contract suite runs on SQLite, on a throwaway Postgres cluster, on FalkorDB's Bolt server
(official ``neo4j`` driver), and on real Neo4j when NEO4J_URI is set. Tests never clean up:
each one works in its own tenant, which is also what tenant isolation guarantees.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge_plane.facts.store import FactStore
from tests.facts.servers import ServerUnavailable, bolt_server, create_database
from tests.facts.support import new_tenant

BACKENDS = ["sqlite", "postgres", "bolt", "neo4j"]


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: str) -> str:
    """An empty database on the session's Postgres cluster (the store migrates it)."""
    return create_database(postgres_cluster)


@pytest.fixture(scope="session")
def bolt_uri() -> Iterator[str]:
    try:
        with bolt_server() as uri:
            yield uri
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def stores() -> Iterator[dict[str, FactStore]]:
    """Stores opened lazily, one per backend, closed at the end of the session."""
    opened: dict[str, FactStore] = {}
    yield opened
    for store in opened.values():
        store.close()


def _open(
    backend: str, request: pytest.FixtureRequest, stores: dict[str, FactStore], tmp_path_factory: pytest.TempPathFactory
) -> FactStore:
    if backend in stores:
        return stores[backend]
    if backend == "sqlite":
        from knowledge_plane.facts.sql_store import SqlFactStore

        path = tmp_path_factory.mktemp("facts-sqlite") / "facts.db"
        stores[backend] = SqlFactStore(f"sqlite:///{path}")
    elif backend == "postgres":
        from knowledge_plane.facts.sql_store import SqlFactStore

        stores[backend] = SqlFactStore(request.getfixturevalue("postgres_url"))
    elif backend == "bolt":
        from knowledge_plane.facts.neo4j_store import Neo4jFactStore

        stores[backend] = Neo4jFactStore(request.getfixturevalue("bolt_uri"), connection_acquisition_timeout=5)
    else:
        uri = os.environ.get("NEO4J_URI")
        if not uri:
            pytest.skip("real Neo4j: set NEO4J_URI (and NEO4J_USER / NEO4J_PASSWORD / NEO4J_DATABASE)")
        from knowledge_plane.facts.neo4j_store import Neo4jFactStore

        user = os.environ.get("NEO4J_USER")
        stores[backend] = Neo4jFactStore(
            uri,
            auth=(user, os.environ.get("NEO4J_PASSWORD", "")) if user else None,
            database=os.environ.get("NEO4J_DATABASE") or None,
        )
    return stores[backend]


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, stores: dict[str, FactStore], tmp_path_factory: pytest.TempPathFactory
) -> FactStore:
    """The fact store under test, for every backend of the contract."""
    return _open(request.param, request, stores, tmp_path_factory)


@pytest.fixture
def sql_store(
    request: pytest.FixtureRequest, stores: dict[str, FactStore], tmp_path_factory: pytest.TempPathFactory
) -> FactStore:
    """The SQL store on the registry's dialect only (SQLite, or Postgres with KNOWLEDGE_TEST_REGISTRY=postgres):
    for the tests of logic above the contract (extraction, CLI, matching)."""
    backend = "postgres" if request.getfixturevalue("postgres_registry") else "sqlite"
    return _open(backend, request, stores, tmp_path_factory)


@pytest.fixture
def tenant() -> str:
    return new_tenant()


@pytest.fixture(scope="session")
def corpus_facts(tmp_path_factory: pytest.TempPathFactory, new_registry_url):
    """The sample corpus staged (raw → parsed → chunks) once and its facts extracted into the registry database.

    Returns (BuildContext, store, {namespace: metadata}).
    """
    from knowledge_plane.build.facts import extract_namespace_facts
    from knowledge_plane.build.sources import discover_namespaces
    from knowledge_plane.build.stages import BuildContext, document_chunks, parsed_documents, raw_documents
    from knowledge_plane.facts.sql_store import SqlFactStore
    from knowledge_plane.settings import Settings

    root = Path(tmp_path_factory.mktemp("facts-corpus"))
    settings = Settings(paths={"data_dir": root / "data"}, registry={"url": new_registry_url(root / "data")})
    ctx = BuildContext(settings, run_id="facts-tests")
    store = SqlFactStore(settings.registry.url.get_secret_value())
    reports = {}
    # rules only: an OPENAI_* variable in the environment must not turn the tests into API calls
    saved = {name: os.environ.pop(name) for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL") if name in os.environ}
    try:
        for namespace in discover_namespaces(settings):
            if not namespace.startswith("knowledge:"):
                continue
            raw_documents(ctx, namespace)
            parsed_documents(ctx, namespace)
            document_chunks(ctx, namespace)
            reports[namespace] = extract_namespace_facts(ctx, namespace, store)
    finally:
        os.environ.update(saved)
    yield ctx, store, reports
    store.close()
