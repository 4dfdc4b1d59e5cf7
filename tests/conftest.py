"""Shared fixtures: every test writes under a temporary data dir, never into the project.

The environment is set before anything imports the code location, because the namespace
partitions are read from the corpus when definitions load. Content-keyed caches (parse, chunk,
embedding) are shared by the whole session: an unchanged chunk is embedded once per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

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
def postgres_registry():
    """With KNOWLEDGE_TEST_REGISTRY=postgres, a throwaway Postgres cluster for the registry; else None."""
    if os.environ.get("KNOWLEDGE_TEST_REGISTRY", "sqlite") != "postgres":
        yield None
        return
    from tests.facts.servers import postgres_server

    with postgres_server("registry_template") as url:
        yield url


@pytest.fixture
def registry_url(postgres_registry, tmp_path: Path) -> str:
    """A fresh registry database per test: SQLite in the test's directory, or a new Postgres database."""
    if postgres_registry is None:
        return f"sqlite:///{tmp_path / 'data' / 'registry.db'}"
    import uuid

    import psycopg

    name = f"registry_{uuid.uuid4().hex[:12]}"
    server = postgres_registry.removeprefix("postgresql+psycopg://").rsplit("/", 1)[0]
    with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{server}/{name}"


@pytest.fixture
def settings(tmp_path: Path, corpus: Path, registry_url: str):
    from core.settings import Settings

    return Settings.from_env(data_dir=tmp_path / "data", knowledge_dir=corpus, registry_url=registry_url)


@pytest.fixture
def build_corpus():
    """Run the Dagster build job in-process; returns (success, {namespace: report})."""
    from cli.build import run_build

    def run(settings, namespaces: list[str] | None = None):
        success, reports, _ = run_build(settings, namespaces or [])
        return success, {r["namespace"]: r for r in reports}

    return run


@pytest.fixture(scope="session")
def s3_url():
    from tests.s3 import s3_endpoint

    with s3_endpoint() as url:
        yield url


@pytest.fixture
def s3_settings(settings, s3_url):
    """Settings whose object store is a fresh bucket on the S3-compatible server."""
    from dataclasses import replace

    from core.object_store import S3ObjectStore, s3_client
    from tests.s3 import fresh_bucket_name

    configured = replace(settings, object_store="s3", s3_endpoint_url=s3_url, bucket=fresh_bucket_name())
    S3ObjectStore(s3_client(s3_url), configured.bucket).ensure_bucket()
    return configured
