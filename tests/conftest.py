"""Shared fixtures: every test writes under a temporary data dir, never into the project.

The environment is set before anything imports the code location, because the namespace
partitions are read from the corpus when definitions load. Content-keyed caches (parse, chunk,
embedding) are shared by the whole session: an unchanged chunk is embedded once per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = PROJECT_ROOT / "knowledge"
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="knowledge-tests-"))
os.environ["KNOWLEDGE_DATA_DIR"] = str(_SESSION_DIR / "data")
os.environ["DAGSTER_HOME"] = str(_SESSION_DIR / "dagster")
os.environ["KNOWLEDGE_CACHE_DIR"] = str(_SESSION_DIR / "shared-cache")
os.environ["HF_HUB_OFFLINE"] = "1"
for _name in ("KNOWLEDGE_CORPUS_DIR", "KNOWLEDGE_REGISTRY_URL", "KNOWLEDGE_TENANT_ID", "KNOWLEDGE_API_KEYS"):
    os.environ.pop(_name, None)


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus, free to be edited by the test."""
    target = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_CORPUS, target)
    return target


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[str]:
    """A throwaway Postgres cluster for the session (the test is skipped without Debian's binaries).

    Its URL names the registry template: a database migrated once, which ``registry_url`` copies.
    """
    from knowledge_plane.storage.schema import upgrade
    from tests.facts.servers import ServerUnavailable, postgres_server

    try:
        with postgres_server("registry_template") as url:
            upgrade(url)
            yield url
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres_registry(request: pytest.FixtureRequest) -> str | None:
    """With KNOWLEDGE_TEST_REGISTRY=postgres, the session's Postgres cluster; else None (SQLite)."""
    if os.environ.get("KNOWLEDGE_TEST_REGISTRY", "sqlite") != "postgres":
        return None
    return request.getfixturevalue("postgres_cluster")


@pytest.fixture(scope="session")
def new_registry_url(postgres_registry: str | None) -> Callable[[Path], str]:
    """new_registry_url(directory) → a fresh registry database: a SQLite file in ``directory``, or a
    new Postgres database with KNOWLEDGE_TEST_REGISTRY=postgres.

    The Postgres one is a copy of the migrated template, which is much faster than migrating it.
    """
    from tests.facts.servers import create_database

    def new(directory: Path) -> str:
        if postgres_registry is None:
            return f"sqlite:///{directory / 'registry.db'}"
        return create_database(postgres_registry, template=sa.make_url(postgres_registry).database)

    return new


@pytest.fixture
def registry_url(new_registry_url: Callable[[Path], str], tmp_path: Path) -> Iterator[str]:
    """A fresh registry database per test (see ``new_registry_url``), dropped after it on Postgres."""
    url = new_registry_url(tmp_path / "data")
    yield url
    if not url.startswith("sqlite"):
        from tests.facts.servers import drop_database

        drop_database(url)


@pytest.fixture
def settings(tmp_path: Path, corpus: Path, registry_url: str, monkeypatch: pytest.MonkeyPatch):
    """A build plane's settings over a private copy of the corpus.

    With KNOWLEDGE_TEST_VECTOR_BACKEND=qdrant, the build publishes to Qdrant as well (a local-mode
    directory of the test's own, or QDRANT_URL's server) and readers built from the environment
    (the query service, ``knowledge query``) read through its aliases.
    """
    from knowledge_plane.settings import Settings

    if os.environ.get("KNOWLEDGE_TEST_VECTOR_BACKEND") == "qdrant":
        monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
        if not os.environ.get("QDRANT_URL"):
            monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    return Settings(paths={"data_dir": tmp_path / "data", "corpus_dir": corpus}, registry={"url": registry_url})


@pytest.fixture
def build_corpus():
    """Run the Dagster build job in-process; returns (success, {namespace: report})."""
    from tests.building import build

    return build


@pytest.fixture(scope="session")
def s3_url():
    from tests.s3 import s3_endpoint

    with s3_endpoint() as url:
        yield url


@pytest.fixture
def s3_settings(settings, s3_url):
    """Settings whose object store is a fresh bucket on the S3-compatible server."""
    from knowledge_plane.storage.object_store import S3ObjectStore, s3_client
    from tests.s3 import fresh_bucket_name

    configured = settings.updated(object_store={"kind": "s3", "endpoint_url": s3_url, "bucket": fresh_bucket_name()})
    S3ObjectStore(s3_client(s3_url), configured.object_store.bucket).ensure_bucket()
    return configured
