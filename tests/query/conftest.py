"""Fixtures of the query-service tests: one built corpus per session, apps over it or over copies.

The sample corpus is built once by the Dagster build job, as ``knowledge build`` builds it.
``internal:code`` is built from a small stand-in project holding three real modules, so the
chatbot's isolation is tested against real code passages without embedding the whole code base.
Tests that move aliases or break versions work on a copy of the registry and write their own
versions: the shared build is never modified.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.query.support import CODE_SAMPLE, PROJECT_ROOT, keys_env, registry_url_of, settings_for


@pytest.fixture(scope="session")
def embedder():
    """The service's query encoder (torch threads left as they are in the test process)."""
    from knowledge_plane.serving.query_encoder import QueryEncoder

    return QueryEncoder(torch_threads=None)


@pytest.fixture(scope="session")
def build_embedder():
    from knowledge_plane.serving.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def new_data_dir(new_registry_url: Callable[[Path], str]) -> Callable[[Path], Path]:
    """new_data_dir(path) → ``path``, created, with a registry database of its own: a SQLite file in
    it, or with KNOWLEDGE_TEST_REGISTRY=postgres a new Postgres database its ``registry.url`` names."""

    def new(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        url = new_registry_url(path)
        if not url.startswith("sqlite"):
            (path / "registry.url").write_text(url)
        return path

    return new


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, new_data_dir) -> Path:
    """A data dir holding the sample corpus, built and promoted; read-only for the tests."""
    from knowledge_plane.settings import Settings
    from tests.building import build

    root = tmp_path_factory.mktemp("query-corpus")
    project = root / "project"
    for relative in CODE_SAMPLE:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / relative, project / relative)
    data = new_data_dir(root / "data")
    settings = Settings(
        paths={"data_dir": data, "project_root": project, "corpus_dir": PROJECT_ROOT / "knowledge"},
        registry={"url": registry_url_of(data)},
    )
    success, reports = build(settings)
    assert success, reports
    return data


@pytest.fixture
def data_copy(built: Path, tmp_path: Path) -> Path:
    """A private data dir whose registry is a copy of the built one (versions stay shared, read-only)."""
    target = tmp_path / "data"
    target.mkdir()
    source = registry_url_of(built)
    if source.startswith("sqlite"):
        with sqlite3.connect(built / "registry.db") as original, sqlite3.connect(target / "registry.db") as copy:
            original.backup(copy)
    else:
        from tests.facts.servers import copy_database

        (target / "registry.url").write_text(copy_database(source))
    return target


@pytest.fixture
def make_client(embedder, built: Path) -> Iterator[Callable[..., TestClient]]:
    """make_client(data_dir=None, ready=True, peer=None, **service_settings) → a started TestClient
    (``peer``: the (host, port) the requests come from, the TCP peer the service sees)."""
    from knowledge_plane.service.app import create_app
    from knowledge_plane.settings import ServiceSettings

    started: list[TestClient] = []

    def make(data_dir: Path | None = None, ready: bool = True, peer: tuple[str, int] | None = None,
             **overrides) -> TestClient:
        values = {
            "api_keys": keys_env(),
            "rate_limit_per_minute": 100_000,
            "rate_limit_per_actor_per_minute": 100_000,
            "enforce_caller_app_registry": False,
            "alias_poll_seconds": 0.2,
            "score_thresholds": "",
            **overrides,
        }
        app = create_app(settings_for(data_dir or built), ServiceSettings(**values), embedder)
        client = TestClient(app, client=peer) if peer else TestClient(app)
        client.__enter__()
        started.append(client)
        serving = app.state.service.wait_ready(60)
        if ready:
            assert serving, app.state.service.checks
        return client

    yield make
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()
