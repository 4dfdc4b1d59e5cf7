"""Quarantine: a version is served only once it passed its checks, at start and on every alias change;
per namespace — a failing one keeps its last good version or, without one, is 503 only for its readers."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from knowledge_plane.storage.registry import Registry
from tests.query.support import headers, registry_url_of, state, synthetic_version

TEXTS = [f"Garantie des pièces détachées, cas numéro {i}" for i in range(6)]


def wait_for(predicate, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def query_status(client) -> int:
    return client.post("/knowledge/query", json={"question": "garantie"}, headers=headers("support_prod")).status_code


def test_nothing_published_is_quarantined_until_a_version_passes(make_client, new_data_dir, tmp_path: Path, caplog):
    caplog.set_level(logging.INFO, logger="knowledge.query")
    data = new_data_dir(tmp_path / "empty")
    registry = Registry(registry_url_of(data), "default")
    client = make_client(data, ready=False)
    response = client.post("/knowledge/query", json={"question": "garantie"}, headers=headers("support_prod"))
    assert response.status_code == 503 and response.headers["retry-after"]
    assert client.get("/knowledge/health").json() == {"status": "not_ready"}
    health = client.get("/knowledge/health", headers=headers("support_prod"))
    assert health.status_code == 503
    checks = {c["name"]: c for c in health.json()["checks"]}
    assert health.json()["status"] == "not_ready" and not checks["aliases"]["passed"]
    assert "QUARANTINE PASSED" not in caplog.text

    synthetic_version(registry, data, "knowledge:faq", TEXTS, tag="aaaaaa")
    wait_for(lambda: query_status(client) == 200)
    assert "QUARANTINE PASSED" in caplog.text
    assert client.get("/knowledge/health").json()["status"] == "ready"


def _bad_version(kind: str, registry: Registry, data: Path) -> str:
    if kind == "dimension":
        return synthetic_version(registry, data, "knowledge:faq", TEXTS, tag="dim016", dimension=16)
    if kind == "not_empty":
        return synthetic_version(registry, data, "knowledge:faq", [], tag="empty0")
    if kind == "model":
        version = synthetic_version(registry, data, "knowledge:faq", TEXTS, tag="model0", promote=False)
        record = registry.version("knowledge:faq", version)
        manifest = Path(record.path) / "manifest.json"
        manifest.write_text(manifest.read_text().replace("all-MiniLM-L6-v2", "other-model"))
        registry.promote("knowledge:faq", version)
        return version
    version = synthetic_version(registry, data, "knowledge:faq", TEXTS, tag="unread", promote=False)
    (Path(registry.version("knowledge:faq", version).path) / "vectors.npy").unlink()
    registry.promote("knowledge:faq", version)
    return version


@pytest.mark.parametrize("kind", ["dimension", "not_empty", "model", "readable"])
def test_a_bad_alias_change_keeps_the_last_good_version_and_a_rollback_recovers(make_client, data_copy, kind):
    client = make_client(data_copy)
    registry = Registry(registry_url_of(data_copy), "default")
    assert query_status(client) == 200
    good = state(client).snapshot.aliases["knowledge:faq"]
    version = _bad_version(kind, registry, data_copy)
    wait_for(lambda: detail(client)["stale"] == {"knowledge:faq": version})
    assert query_status(client) == 200 and state(client).snapshot.aliases["knowledge:faq"] == good
    health = detail(client)
    failed = [c for c in health["checks"] if not c["passed"]]
    assert [(c["name"], c["namespace"], c["version"]) for c in failed] == [(kind, "knowledge:faq", version)]
    assert health["index_versions"]["knowledge:faq"] == good
    registry.rollback("knowledge:faq")
    wait_for(lambda: detail(client)["stale"] == {})
    assert all(c["passed"] for c in detail(client)["checks"])
    assert state(client).snapshot.aliases["knowledge:faq"] == good


def detail(client, actor: str = "agents_dev") -> dict:
    return client.get("/knowledge/health", headers=headers(actor)).json()


def ask(client, actor: str, **body) -> int:
    return client.post("/knowledge/query", json={"question": "garantie", **body}, headers=headers(actor)).status_code


def _corrupt(registry: Registry, namespace: str, version: str, how: str) -> None:
    path = Path(registry.version(namespace, version).path)
    if how == "truncated_vectors":
        vectors = path / "vectors.npy"
        vectors.write_bytes(vectors.read_bytes()[:100])
    else:  # payload lines that are not JSON
        (path / "payloads.jsonl").write_text('{"chunk_id": "x", "text": \n', encoding="utf-8")


@pytest.mark.parametrize("how", ["truncated_vectors", "garbage_payloads"])
def test_rolling_back_to_a_corrupt_version_keeps_serving_the_good_one(make_client, data_copy, how):
    registry = Registry(registry_url_of(data_copy), "default")
    old = synthetic_version(registry, data_copy, "knowledge:faq", TEXTS, tag=f"old{how[:3]}")
    new = synthetic_version(registry, data_copy, "knowledge:faq", TEXTS, tag=f"new{how[:3]}")
    client = make_client(data_copy)
    assert state(client).snapshot.aliases["knowledge:faq"] == new
    _corrupt(registry, "knowledge:faq", old, how)  # on disk, after it was built and checked
    registry.rollback("knowledge:faq")  # the real alias move: @latest → the corrupt version
    assert registry.aliases()["knowledge:faq"]["latest"] == old
    wait_for(lambda: detail(client)["stale"] == {"knowledge:faq": old})
    assert state(client).snapshot.aliases["knowledge:faq"] == new
    for actor in ("chatbot_prod", "support_prod", "agents_dev"):
        assert ask(client, actor) == 200
    response = client.post("/knowledge/query", headers=headers("support_prod"),
                           json={"question": "garantie des pièces", "namespaces": ["knowledge:faq"]})
    assert response.json()["index_versions"] == {"knowledge:faq": new}


def test_one_failing_internal_namespace_quarantines_only_its_readers(make_client, data_copy):
    registry = Registry(registry_url_of(data_copy), "default")
    broken = synthetic_version(registry, data_copy, "internal:audits", TEXTS, tag="audit0", promote=False)
    _corrupt(registry, "internal:audits", broken, "truncated_vectors")
    registry.promote("internal:audits", broken)
    client = make_client(data_copy)  # starts with no good version of internal:audits ever seen

    assert ask(client, "chatbot_prod") == 200 and ask(client, "support_prod") == 200
    response = client.post("/knowledge/query", json={"question": "garantie"}, headers=headers("agents_dev"))
    assert response.status_code == 503 and "internal:audits" in response.json()["detail"]
    assert response.headers["retry-after"]
    assert ask(client, "agents_dev", namespaces=["knowledge:faq"]) == 200  # narrowed away from it
    assert client.get("/knowledge/health").status_code == 200
    assert detail(client)["quarantined"] == ["internal:audits"]
    chatbot = detail(client, "chatbot_prod")
    assert chatbot["quarantined"] == [] and "internal:audits" not in str(chatbot)

    fixed = synthetic_version(registry, data_copy, "internal:audits", TEXTS, tag="audit1")
    wait_for(lambda: ask(client, "agents_dev") == 200)
    assert detail(client)["quarantined"] == [] and detail(client)["index_versions"]["internal:audits"] == fixed
