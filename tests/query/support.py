"""Helpers shared by the query-service tests: test keys, request headers, hand-made versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "chatbot_prod": "chatbot-test-key-0000000001",
    "support_prod": "support-test-key-0000000002",
    "kpi_prod": "kpi-test-key-000000000000003",
    "agents_dev": "agents-test-key-0000000000004",
}
CHATBOT_NAMESPACES = frozenset(
    {"knowledge:faq", "knowledge:diagnostic", "knowledge:vehicle", "knowledge:policies", "knowledge:guides"}
)
CODE_SAMPLE = ("knowledge_plane/storage/registry.py", "knowledge_plane/storage/index_store.py",
               "knowledge_plane/serving/embedding.py")


def keys_env(keys: dict[str, str] = KEYS) -> str:
    return ",".join(f"{actor}={key}" for actor, key in keys.items())


def headers(actor: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[actor]}


def registry_url_of(data: Path) -> str:
    """A data dir's registry: the Postgres database its ``registry.url`` names, else its SQLite file."""
    pointer = data / "registry.url"
    return pointer.read_text() if pointer.exists() else f"sqlite:///{data / 'registry.db'}"


def settings_for(data: Path):
    from knowledge_plane.settings import Settings

    return Settings(paths={"data_dir": data}, registry={"url": registry_url_of(data)})


def state(client: TestClient):
    return client.app.state.service


def synthetic_version(
    registry,
    data_dir: Path,
    namespace: str,
    texts: list[str],
    *,
    tag: str,
    vectors=None,
    dimension: int = 384,
    truth_level: str = "L1",
    promote: bool = True,
    rows: list[dict] | None = None,
    facts: list[dict] | None = None,
    **payload_extra,
) -> str:
    """Write, register and (by default) promote a small hand-made version; returns its version id.
    ``rows``: payload fields of each text in turn (pack_id, source_app, lang…), over ``payload_extra``;
    ``facts``: the approved facts the version publishes (snapshot rows)."""
    from knowledge_plane.serving.embedding import MODEL_NAME
    from knowledge_plane.storage.index_store import version_dir, write_version

    version = f"v20990101-000000-{tag}"
    if vectors is None:
        rng = np.random.default_rng(abs(hash(tag)) % 2**32)
        vectors = rng.normal(size=(len(texts), dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) if len(texts) else 1
    payloads = [
        {
            "chunk_id": f"{tag}-{i:04d}",
            "doc_id": f"doc.{i}",
            "doc_version": tag,
            "title": f"Document {i}",
            "namespace": namespace,
            "source_path": f"synthetic/{i}.md",
            "heading_path": [],
            "location": f"§ {i}",
            "text": text,
            "truth_level": truth_level,
            "tenant_id": registry.tenant_id,
            "pack_id": None,
            "source_app": "git",
            "lang": "fr",
            "updated": "2026-01-01",
            "kind": "text",
            **payload_extra,
            **(rows[i] if rows else {}),
        }
        for i, text in enumerate(texts)
    ]
    manifest = {
        "namespace": namespace,
        "version": version,
        "model": MODEL_NAME,
        "dimension": dimension,
        "fingerprint": tag * 8,
        "counts": {"documents": len(texts), "chunks": len(texts)},
        "checks": [],
        "checks_passed": True,
    }
    path = version_dir(data_dir / "indexes", registry.tenant_id, namespace, version)
    write_version(path, manifest, np.asarray(vectors, dtype=np.float32).reshape(len(texts), dimension), payloads,
                  facts)
    registry.add_version(namespace, version, path, manifest)
    if promote:
        registry.promote(namespace, version)
    return version
