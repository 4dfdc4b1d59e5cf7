"""Quarantine: nothing is served until the aliased versions pass their checks, at start and on every change."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from core.registry import Registry
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
    health = client.get("/knowledge/health")
    assert health.status_code == 503
    checks = {c["name"]: c for c in health.json()["checks"]}
    assert health.json()["status"] == "quarantined" and not checks["aliases"]["passed"]
    assert "QUARANTINE PASSED" not in caplog.text

    synthetic_version(registry, data, "knowledge:faq", TEXTS, tag="aaaaaa")
    wait_for(lambda: query_status(client) == 200)
    assert "QUARANTINE PASSED" in caplog.text
    assert client.get("/knowledge/health").json()["status"] == "serving"


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
def test_a_bad_alias_change_quarantines_and_a_rollback_recovers(make_client, data_copy, kind):
    client = make_client(data_copy)
    registry = Registry(registry_url_of(data_copy), "default")
    assert query_status(client) == 200
    version = _bad_version(kind, registry, data_copy)
    wait_for(lambda: query_status(client) == 503)
    health = client.get("/knowledge/health").json()
    failed = [c for c in health["checks"] if not c["passed"]]
    assert [(c["name"], c["namespace"], c["version"]) for c in failed] == [(kind, "knowledge:faq", version)]
    registry.rollback("knowledge:faq")
    wait_for(lambda: query_status(client) == 200)
    assert client.get("/knowledge/health").json()["status"] == "serving"
    assert state(client).snapshot.aliases["knowledge:faq"] != version
