"""The build job publishing to Qdrant (qdrant-client's local mode; a server when QDRANT_URL is set):
the Qdrant alias always mirrors the registry's @latest, through promotion, rollback and pruning."""

from __future__ import annotations

import json

import pytest

from knowledge_plane.build.stages import BuildContext, rollback
from knowledge_plane.serving.embedding import Embedder
from knowledge_plane.storage.registry import Registry
from knowledge_plane.storage.vector_backends import open_vector_backend


@pytest.fixture
def qdrant_env(monkeypatch, tmp_path):
    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
    if not __import__("os").environ.get("QDRANT_URL"):
        monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))


def alias_target(settings, namespace):
    with open_vector_backend(settings, read_only=True) as backend:
        return backend.current_alias_target(namespace)


def test_qdrant_alias_follows_promotion_rollback_and_pruning(qdrant_env, settings, corpus, build_corpus):
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    faq = corpus / "faq" / "livraison.json"
    versions = []
    for i in range(4):
        if i:
            data = json.loads(faq.read_text(encoding="utf-8"))
            data["items"][0]["answer"] += f" Précision {i}."
            faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        success, reports = build_corpus(settings, ["knowledge:faq"])
        assert success and reports["knowledge:faq"]["promoted"]
        versions.append(reports["knowledge:faq"]["version"])
        assert alias_target(settings, "knowledge:faq") == registry.aliases()["knowledge:faq"]["latest"]
    with open_vector_backend(settings, read_only=True) as backend:
        assert backend.list_versions("knowledge:faq") == sorted(versions[1:])  # keep 3
        vector = Embedder().encode_query("Livrez-vous en point relais ?")
        hits = backend.search("knowledge:faq", vector, "point relais", 3, {"tenant_id": "default"})
    assert hits and all(h.payload["namespace"] == "knowledge:faq" for h in hits)
    rollback(BuildContext(settings), "knowledge:faq")
    assert alias_target(settings, "knowledge:faq") == versions[2] == registry.aliases()["knowledge:faq"]["latest"]


def test_a_failed_check_moves_neither_alias(qdrant_env, settings, corpus, build_corpus):
    _, first = build_corpus(settings, ["knowledge:guides"])
    for path in (corpus / "guides").iterdir():
        path.unlink()
    success, _ = build_corpus(settings, ["knowledge:guides"])
    assert not success
    assert alias_target(settings, "knowledge:guides") == first["knowledge:guides"]["version"]
