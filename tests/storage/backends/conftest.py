"""Fixtures of the vector-backend tests: synthetic index versions, and the stores to publish them to.

Every Qdrant test runs on qdrant-client's local mode and, when ``QDRANT_URL`` is set, once more on
that server (``QDRANT_API_KEY`` if it needs one). test_weaviate.py overrides ``target`` with a
Weaviate server when ``WEAVIATE_URL`` is set. Each test gets a tenant of its own, so runs against
a shared server never see each other's collections, and removes what it created.

The behaviour tests reach the store only through the contract; what the contract does not expose
(point ids, raw alias table, damaging a collection) goes through the target's probe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge_plane.storage.vector_backends import VectorBackend

DIM = 384
NAMESPACE = "knowledge:faq"
OTHER_TENANT = "other-tenant"
PACKS = ("pack-a", "pack-b", "pack-c", None)


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    return unit(rng.normal(size=(n, DIM)))


@dataclass
class Version:
    vectors: np.ndarray
    payloads: list[dict[str, Any]]

    @property
    def chunk_ids(self) -> set[str]:
        return {p["chunk_id"] for p in self.payloads}


def payload(chunk_id: str, text: str, tenant_id: str, pack_id: str | None = None, source_app: str = "git") -> dict:
    """A payload shaped like knowledge_plane.build.stages's, with only what these tests look at varying."""
    return {
        "chunk_id": chunk_id,
        "doc_id": chunk_id.rsplit("-", 1)[0],
        "doc_version": "1",
        "title": "",
        "namespace": NAMESPACE,
        "source_path": f"{chunk_id}.md",
        "heading_path": [],
        "location": "",
        "text": text,
        "truth_level": "L2",
        "tenant_id": tenant_id,
        "pack_id": pack_id,
        "source_app": source_app,
        "caller_app": None,
        "lang": "fr",
        "updated": None,
        "kind": "text",
    }


def make_version(tenant_id: str, label: str, n: int = 200, seed: int = 0) -> Version:
    """``n`` chunks with random unit vectors, spread over packs, two apps, and (every 10th) another tenant."""
    rng = np.random.default_rng(seed)
    payloads = [
        payload(
            f"{label}-{i:04d}",
            f"Passage {i} de la version {label} : entretien courant du véhicule.",
            OTHER_TENANT if i % 10 == 9 else tenant_id,
            PACKS[i % len(PACKS)],
            "crm" if i % 3 == 0 else "wiki",
        )
        for i in range(n)
    ]
    return Version(random_unit(rng, n), payloads)


@dataclass
class Probe:
    """Store-specific views the contract does not offer, for assertions and for damaging a version."""

    point_ids: Callable[[str], set[str]]  # collection → ids of its points
    delete_points: Callable[[str, list[str]], None]  # collection, ids
    alias_targets: Callable[[str], list[str]]  # alias → the collections it points at


@dataclass
class Target:
    backend: VectorBackend  # the build plane's, read-write
    reader: VectorBackend  # the query service's, read-only
    probe: Probe


def fresh_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def _qdrant_probe(client: Any) -> Probe:
    from qdrant_client import models

    def point_ids(collection: str) -> set[str]:
        points, _ = client.scroll(collection, limit=100_000, with_payload=False, with_vectors=False)
        return {str(p.id) for p in points}

    def delete_points(collection: str, ids: list[str]) -> None:
        client.delete(collection, points_selector=models.PointIdsList(points=ids), wait=True)

    def alias_targets(alias: str) -> list[str]:
        return [a.collection_name for a in client.get_aliases().aliases if a.alias_name == alias]

    return Probe(point_ids, delete_points, alias_targets)


def _local_dir() -> Path:
    # Local mode commits every point to SQLite on its own: on a disk, fsync makes 200 points take
    # seconds; on tmpfs the same test takes a fraction of one. Same code path either way.
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="qdrant-local-", dir=base))


@pytest.fixture(params=["local", "server"], ids=["qdrant-local", "qdrant-server"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    from qdrant_client import QdrantClient

    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    tenant = fresh_tenant()
    if request.param == "local":
        path = _local_dir()
        # Local mode locks its directory: the build plane's and the service's backends share one client.
        client = QdrantClient(path=str(path))
        writer = QdrantBackend(client, tenant, read_only=False)
        yield Target(writer, QdrantBackend(client, tenant, read_only=True), _qdrant_probe(client))
        client.close()
        shutil.rmtree(path, ignore_errors=True)
        return
    url = os.environ.get("QDRANT_URL")
    if not url:
        pytest.skip("QDRANT_URL is not set: no Qdrant server to run against (local mode ran instead)")
    key = os.environ.get("QDRANT_API_KEY") or None
    writer = QdrantBackend.connect(url=url, api_key=key, tenant_id=tenant, read_only=False)
    reader = QdrantBackend.connect(url=url, api_key=key, tenant_id=tenant, read_only=True)
    yield Target(writer, reader, _qdrant_probe(writer.client))
    prefix = f"KP_{tenant}_"
    for collection in writer.client.get_collections().collections:
        if collection.name.startswith(prefix):
            writer.client.delete_collection(collection.name)
    reader.close()
    writer.close()


@pytest.fixture
def backend(target: Target) -> VectorBackend:
    return target.backend


@pytest.fixture
def reader(target: Target) -> VectorBackend:
    return target.reader


@pytest.fixture
def probe(target: Target) -> Probe:
    return target.probe
