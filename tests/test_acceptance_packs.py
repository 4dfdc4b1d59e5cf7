"""Acceptance (Aurora Nexus): uploads in packs, built from an S3 server, queried across applications."""

from __future__ import annotations

import pytest

from knowledge_plane.serving.access import ACTORS
from knowledge_plane.serving.config import retrieval_config
from knowledge_plane.serving.query_encoder import QueryEncoder
from knowledge_plane.serving.query_engine import QueryEngine, QueryRequest
from knowledge_plane.serving.snapshot import load_snapshot
from knowledge_plane.storage.object_store import S3ObjectStore, s3_client
from knowledge_plane.storage.registry import Registry
from knowledge_plane.storage.vector_backends import open_vector_backend

NOTE_A = """# Serrage des roues

## Couple de serrage des roues
Les écrous de roue de la Clio III se serrent au couple de 105 N·m, en étoile, avec une clé dynamométrique.

## Resserrage des roues après montage
Après un changement de roues, contrôler le couple de serrage des écrous au bout de 50 kilomètres.

## Outils pour le serrage des roues
Une clé dynamométrique étalonnée et une douille de 17 mm suffisent pour serrer les écrous de roue.

## Erreurs de serrage des roues
Un serrage au pistolet pneumatique sans contrôle au couple déforme les disques et desserre les roues.
"""
NOTE_B = NOTE_A.replace("Clio III", "Peugeot 206").replace("105 N·m", "100 N·m").replace("17 mm", "19 mm")
QUESTION = "À quel couple faut-il serrer les écrous de roue ?"


@pytest.fixture
def uploads_index(s3_settings, build_corpus):
    store = S3ObjectStore(s3_client(s3_settings.object_store.endpoint_url), s3_settings.object_store.bucket)
    store.put("uploads/default/pack-a/serrage.md", NOTE_A.encode(), {"source_app": "notes"})
    store.put("uploads/default/pack-b/serrage-206.md", NOTE_B.encode(), {"source_app": "wiki"})
    success, reports = build_corpus(s3_settings, ["knowledge:policies", "knowledge:uploads"])
    assert success and reports["knowledge:uploads"]["promoted"]
    # Through the vector store's aliases when one is configured (KNOWLEDGE_TEST_VECTOR_BACKEND=qdrant).
    backend = open_vector_backend(s3_settings, read_only=True)
    registry = Registry(s3_settings.registry.url.get_secret_value(), s3_settings.tenant_id)
    snapshot, checks = load_snapshot(registry, backend=backend)
    assert snapshot is not None, checks
    if backend is not None:
        assert {type(index).__name__ for index in snapshot.indexes.values()} == {"BackendIndex"}
    engine = QueryEngine(QueryEncoder(torch_threads=None), retrieval_config(s3_settings.service), "default")

    def ask(actor: str, **request) -> dict:
        return engine.answer(snapshot, ACTORS[actor], QueryRequest(question=QUESTION, **request)).response

    yield ask
    if backend is not None:
        backend.close()


def sources(response: dict) -> set[str]:
    return {p["source_path"] for p in response["passages"]}


def test_another_application_querying_pack_a_cites_the_notes_document_and_nothing_else(uploads_index):
    response = uploads_index("support_prod", caller_app="chatbot", pack_ids=("pack-a",))
    # Uploads declare no truth level, so they get their pack's default grant (L4): cited, with lower confidence.
    assert response["status"] in ("success", "low_confidence") and response["passages"]
    assert sources(response) == {"uploads/default/pack-a/serrage.md"}
    assert all(p["doc_id"] and p["doc_version"] for p in response["passages"])


def test_a_query_over_two_packs_cites_both(uploads_index):
    response = uploads_index("support_prod", caller_app="chatbot", pack_ids=("pack-a", "pack-b"), top_k=8)
    assert sources(response) == {"uploads/default/pack-a/serrage.md", "uploads/default/pack-b/serrage-206.md"}


def test_uploads_are_filterable_by_the_application_that_ingested_them(uploads_index):
    only_wiki = uploads_index("support_prod", source_app="wiki", top_k=8)
    assert sources(only_wiki) == {"uploads/default/pack-b/serrage-206.md"}


def test_the_customer_chatbot_never_sees_uploads(uploads_index):
    for request in ({}, {"pack_ids": ("pack-a",)}, {"namespaces": ("knowledge:uploads",)}):
        response = uploads_index("chatbot_prod", **request)
        assert not any(p["namespace"] == "knowledge:uploads" for p in response["passages"])
