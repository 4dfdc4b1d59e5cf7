"""The query service reading through the Qdrant alias (qdrant-client's local mode; a server when
QDRANT_URL is set), after a real build: same gate as the local files, hot swap, quarantine."""

from __future__ import annotations

import json
import os
import time

import pytest
from fastapi.testclient import TestClient

from knowledge_plane.storage.vector_backends import open_vector_backend
from tests.query.support import headers, keys_env

QUESTION = "Combien de temps ai-je pour retourner une pièce ?"
NAMESPACES = ["knowledge:faq", "knowledge:policies"]


@pytest.fixture
def qdrant_env(monkeypatch, tmp_path):
    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
    if not os.environ.get("QDRANT_URL"):
        monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))


@pytest.fixture
def serve(settings):
    """serve() → a started TestClient over ``settings``, reading the backend the environment names."""
    from knowledge_plane.service.app import create_app
    from knowledge_plane.serving.query_encoder import QueryEncoder
    from knowledge_plane.settings import ServiceSettings, Settings

    clients: list[TestClient] = []
    encoder = QueryEncoder(torch_threads=None)

    def start() -> TestClient:
        service = ServiceSettings(api_keys=keys_env(), rate_limit_per_minute=100_000,
                                  rate_limit_per_actor_per_minute=100_000,
                                  enforce_caller_app_registry=False, alias_poll_seconds=0.2)
        # The vector store the environment names when the service starts, as a service process reads it.
        started = settings.updated(vector_store=Settings().vector_store.model_dump())
        client = TestClient(create_app(started, service, encoder))
        client.__enter__()
        clients.append(client)
        client.app.state.service.wait_ready(60)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def ask(client: TestClient, question: str = QUESTION) -> dict:
    response = client.post("/knowledge/query", json={"question": question, "top_k": 5},
                           headers=headers("chatbot_prod"))
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def test_the_service_answers_through_the_qdrant_alias_with_the_local_gate(
    qdrant_env, settings, corpus, build_corpus, serve, monkeypatch
):
    success, reports = build_corpus(settings, NAMESPACES)
    assert success
    client = serve()
    state = client.app.state.service
    assert state.backend is not None and state.backend.kind == "qdrant" and state.backend.read_only
    with open_vector_backend(settings, read_only=True) as store:
        served = {ns: store.current_alias_target(ns) for ns in NAMESPACES}
    assert served == {ns: reports[ns]["version"] for ns in NAMESPACES}

    through_qdrant = ask(client)
    assert through_qdrant["status"] == "success" and through_qdrant["passages"]
    assert through_qdrant["index_versions"] == served
    assert {p["index_version"] for p in through_qdrant["passages"]} <= set(served.values())
    assert any("retour" in p["source_path"] for p in through_qdrant["passages"])

    # The same versions read from their files: the store ranks, but every passage found both ways
    # gets the same gate score, so the thresholds calibrated on the local index hold.
    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "local")
    local = ask(serve())
    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
    assert local["status"] == "success" and local["index_versions"] == served
    local_scores = {p["chunk_id"]: p["score"] for p in local["passages"]}
    common = [p for p in through_qdrant["passages"] if p["chunk_id"] in local_scores]
    assert common, (local["passages"], through_qdrant["passages"])
    for p in common:
        assert p["score"] == pytest.approx(local_scores[p["chunk_id"]], abs=2e-4)
    off_topic = ask(client, "Quelle est la recette de la tarte tatin aux pommes ?")
    assert off_topic["status"] == "needs_clarification" and not off_topic["passages"]

    # A new build moves the Qdrant alias; the service follows within a poll, and keeps answering.
    faq = corpus / "faq" / "retours.json"
    data = json.loads(faq.read_text(encoding="utf-8"))
    data["items"][0]["answer"] += " Le délai court à partir de la date de livraison."
    faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    success, reports = build_corpus(settings, ["knowledge:faq"])
    assert success and reports["knowledge:faq"]["promoted"]
    new = reports["knowledge:faq"]["version"]
    wait_for(lambda: state.snapshot is not None and state.snapshot.aliases.get("knowledge:faq") == new)
    assert ask(client)["index_versions"]["knowledge:faq"] == new


def test_a_namespace_missing_from_the_store_quarantines_until_it_is_published(
    settings, build_corpus, serve, monkeypatch, tmp_path
):
    local = settings.updated(vector_store={"backend": "local", "qdrant_url": None, "qdrant_path": None})
    success, _ = build_corpus(local, ["knowledge:policies"])  # built with the local default only
    assert success
    monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")  # what the service then starts with
    monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "qdrant"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    client = serve()
    response = client.post("/knowledge/query", json={"question": QUESTION}, headers=headers("chatbot_prod"))
    assert response.status_code == 503
    health = client.get("/knowledge/health", headers=headers("agents_dev")).json()
    failed = [c for c in health["checks"] if not c["passed"]]
    assert [(c["name"], c["namespace"]) for c in failed] == [("alias", "knowledge:policies")]
    assert "qdrant has no alias" in failed[0]["detail"]

    # Building with the backend publishes the version (unchanged content: the same version id).
    qdrant = settings.updated(vector_store={"backend": "qdrant", "qdrant_url": None,
                                            "qdrant_path": str(tmp_path / "qdrant")})
    success, reports = build_corpus(qdrant, ["knowledge:policies"])
    assert success
    state = client.app.state.service
    wait_for(lambda: state.snapshot is not None, seconds=15)
    assert ask(client)["index_versions"] == {"knowledge:policies": reports["knowledge:policies"]["version"]}
