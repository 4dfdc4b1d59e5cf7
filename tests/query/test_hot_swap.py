"""Hot swap: a moved alias is served within 5 s, under load, with no error and no mixed versions."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

from knowledge_plane.storage.registry import Registry
from tests.query.support import headers, registry_url_of, state, synthetic_version

NAMESPACE = "knowledge:faq"
TEXTS = [f"Garantie et retour des pièces détachées, fiche {i}" for i in range(40)]


def test_alias_moves_under_concurrent_requests(make_client, new_data_dir, tmp_path: Path):
    data = new_data_dir(tmp_path / "swap")
    registry = Registry(registry_url_of(data), "default")
    v1 = synthetic_version(registry, data, NAMESPACE, TEXTS, tag="aaaaaa")
    client = make_client(data, score_thresholds="knowledge:*=-1", alias_poll_seconds=0.2)
    first = weakref.ref(state(client).snapshot.indexes[NAMESPACE])

    results: list[tuple[int, dict]] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            response = client.post("/knowledge/query", json={"question": "garantie retour pièce", "top_k": 20},
                                   headers=headers("support_prod"))
            results.append((response.status_code, response.json()))

    def served() -> str | None:
        return results[-1][1].get("index_versions", {}).get(NAMESPACE) if results else None

    def wait_served(version: str) -> float:
        started = time.monotonic()
        while served() != version:
            assert time.monotonic() - started < 5, f"{version} not served within 5 s"
            time.sleep(0.02)
        return time.monotonic() - started

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_served(v1)
        v2 = synthetic_version(registry, data, NAMESPACE, TEXTS, tag="bbbbbb")
        wait_served(v2)
        second = weakref.ref(state(client).snapshot.indexes[NAMESPACE])
        registry.rollback(NAMESPACE)
        wait_served(v1)
        v3 = synthetic_version(registry, data, NAMESPACE, TEXTS[:30], tag="cccccc")
        wait_served(v3)
        time.sleep(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join()

    assert len(results) > 20
    assert {code for code, _ in results} == {200}
    tags = {v1: "aaaaaa", v2: "bbbbbb", v3: "cccccc"}
    seen = set()
    for _, body in results:
        version = body["index_versions"][NAMESPACE]
        seen.add(version)
        assert body["passages"], body["status"]
        assert {p["index_version"] for p in body["passages"]} == {version}  # one version per answer
        assert {p["doc_version"] for p in body["passages"]} == {tags[version]}  # and its own content
    assert seen == {v1, v2, v3}

    results.clear()
    gc.collect()
    assert first() is None and second() is None  # the replaced versions were released
    mapped = Path("/proc/self/maps").read_text()
    assert f"{v1}/vectors.npy" not in mapped and f"{v2}/vectors.npy" not in mapped
    assert f"{v3}/vectors.npy" in mapped
    open_files = {str(fd.resolve()) for fd in Path("/proc/self/fd").iterdir() if fd.exists()}
    assert not any(f"{v1}/" in f or f"{v2}/" in f for f in open_files)  # payload files closed too
