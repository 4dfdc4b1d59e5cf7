"""Vector-backend benchmark (issue 6, item 5): prints figures, never a test.

For each backend available here it measures, through the knowledge_plane/storage/vector_backends adapters:

- publication throughput: points/s for one index version of ``--points`` synthetic chunks
  (random unit 384-d vectors, synthetic French text, BM25 sparse vectors computed by the adapter);
- alias switch time: ``--switches`` atomic switches between two published versions;
- query latency p50/p95: ``--queries`` hybrid searches through the alias (dense + BM25, tenant and
  pack filters, top 10);
- the query service's read path p50/p95: the same questions through knowledge_plane.serving.backend_index (the store's
  search for 50 candidates with their vectors, then the gate's cosine + coverage from the version
  record) and knowledge_plane.serving.retrieval's gate — what a request spends in "search" with this backend.

Backends: qdrant-client's local mode always (on tmpfs, plus a smaller publish on disk to show what
per-point SQLite commits cost there); a Qdrant server when QDRANT_URL is set; Weaviate when
WEAVIATE_URL is set (needs weaviate-client). Local mode is brute force in pure Python: its figures
describe the test double, not a Qdrant server.

    .venv/bin/python bench/backends.py [--points 10000] [--queries 100] [--switches 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_plane.storage.vector_backends import VectorBackend

NAMESPACE = "knowledge:bench"
DIM = 384
PACKS = ("pack-a", "pack-b", "pack-c", "pack-d")
WORDS = (
    "frein plaquette disque étrier liquide embrayage boîte vitesse moteur vidange huile filtre courroie "
    "distribution batterie alternateur démarreur bougie injecteur turbo catalyseur échappement sonde "
    "lambda pneu pression jante parallélisme amortisseur ressort rotule direction climatisation gaz "
    "compresseur radiateur thermostat pompe eau voyant tableau bord diagnostic code défaut garantie "
    "facture devis rendez-vous atelier contrôle technique révision entretien kilométrage carnet "
    "véhicule voiture utilitaire hybride électrique recharge borne câble autonomie"
).split()
LINK = "le la les du des un une et pour avec sans sur dans".split()
NOTE = (
    "qdrant-local is qdrant-client's local mode: brute force in pure Python, a test double; "
    "its figures say nothing about a Qdrant server."
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def synthetic(n: int, tenant: str, seed: int, label: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads = []
    for i in range(n):
        words = [WORDS[j] if k % 3 else LINK[j % len(LINK)] for k, j in enumerate(rng.integers(0, len(WORDS), 60))]
        code = f"P{rng.integers(100, 3000):04d}"
        payloads.append({
            "chunk_id": f"{label}-{i:06d}",
            "doc_id": f"doc-{i // 8}",
            "namespace": NAMESPACE,
            "title": " ".join(words[:4]).capitalize(),
            "heading_path": [],
            "text": f"{' '.join(words)} (code {code}).",
            "tenant_id": tenant,
            "pack_id": PACKS[i % len(PACKS)],
            "source_app": "bench",
        })
    return vectors, payloads


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(backend: VectorBackend, points: int, queries: int, switches: int) -> dict[str, Any]:
    tenant = backend.tenant_id
    vectors, payloads = synthetic(points, tenant, seed=1, label="a")
    started = time.perf_counter()
    backend.publish(NAMESPACE, "va", vectors, payloads)
    publish_seconds = time.perf_counter() - started
    log(f"{backend.kind}: published {points} points in {publish_seconds:.1f} s")
    small_vectors, small_payloads = synthetic(100, tenant, seed=2, label="b")
    backend.publish(NAMESPACE, "vb", small_vectors, small_payloads)

    switch_ms = []
    for i in range(switches):
        started = time.perf_counter()
        backend.switch_alias(NAMESPACE, "vb" if i % 2 == 0 else "va")
        switch_ms.append((time.perf_counter() - started) * 1000)
    backend.switch_alias(NAMESPACE, "va")

    rng = np.random.default_rng(3)
    query_vectors = rng.normal(size=(queries, DIM)).astype(np.float32)
    query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
    query_ms = []
    for i in range(queries):
        words = rng.choice(WORDS, size=4)
        filters = {"tenant_id": tenant, "pack_ids": list(PACKS[: 1 + i % 3])}
        started = time.perf_counter()
        hits = backend.search(NAMESPACE, query_vectors[i], " ".join(words), 10, filters)
        query_ms.append((time.perf_counter() - started) * 1000)
        assert hits, "a search through the alias returned nothing"
    service_ms = service_path(backend, query_vectors, rng)
    return {
        "points": points,
        "publish_seconds": round(publish_seconds, 2),
        "points_per_second": round(points / publish_seconds, 1),
        "switch_ms_p50": round(percentile(switch_ms, 50), 2),
        "switch_ms_max": round(max(switch_ms), 2),
        "queries": queries,
        "query_ms_p50": round(percentile(query_ms, 50), 2),
        "query_ms_p95": round(percentile(query_ms, 95), 2),
        "service_ms_p50": round(percentile(service_ms, 50), 2),
        "service_ms_p95": round(percentile(service_ms, 95), 2),
    }


def service_path(backend: VectorBackend, query_vectors: np.ndarray, rng: np.random.Generator) -> list[float]:
    from knowledge_plane.serving.backend_index import BackendIndex
    from knowledge_plane.serving.retrieval import Filters, RetrievalConfig, search

    info = backend.read_version_info(NAMESPACE, "va")
    assert info is not None, "the published version has no record"
    index, config = BackendIndex(backend, info), RetrievalConfig(thresholds={"default": -1.0})
    timings = []
    for i, vector in enumerate(query_vectors):
        question = " ".join(rng.choice(WORDS, size=4))
        filters = Filters(backend.tenant_id, frozenset(PACKS[: 1 + i % 3]))
        started = time.perf_counter()
        result = search([index], vector, question, filters, 5, config)
        timings.append((time.perf_counter() - started) * 1000)
        assert result.passages, "the read path returned nothing"
    return timings


def publish_only(backend: VectorBackend, points: int) -> dict[str, Any]:
    vectors, payloads = synthetic(points, backend.tenant_id, seed=4, label="d")
    started = time.perf_counter()
    backend.publish(NAMESPACE, "vd", vectors, payloads)
    seconds = time.perf_counter() - started
    return {"points": points, "publish_seconds": round(seconds, 2), "points_per_second": round(points / seconds, 1)}


@contextmanager
def qdrant_local(base: str | None) -> Iterator[VectorBackend]:
    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    path = tempfile.mkdtemp(prefix="bench-qdrant-", dir=base)
    backend = QdrantBackend.connect(path=path, tenant_id="bench", read_only=False)
    try:
        yield backend
    finally:
        backend.close()
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def on_server(open_backend: Callable[[str], VectorBackend]) -> Iterator[VectorBackend]:
    backend = open_backend(f"bench-{uuid.uuid4().hex[:8]}")
    try:
        yield backend
    finally:
        _drop_everything(backend)
        backend.close()


def _drop_everything(backend: VectorBackend) -> None:
    """The alias first (the contract never drops it: a served version cannot be deleted), then every version."""
    alias = backend.alias_name(NAMESPACE)
    if backend.kind == "qdrant":
        from qdrant_client import models

        backend.client.update_collection_aliases(  # type: ignore[attr-defined]
            change_aliases_operations=[models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))]
        )
    else:
        backend.client.alias.delete(alias_name=alias)  # type: ignore[attr-defined]
    for version in backend.list_versions(NAMESPACE):
        backend.delete_version(NAMESPACE, version)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--disk-points", type=int, default=300, help="local mode on disk (per-point commits)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # Payload indexes are a server feature; local mode says so once per field and version.
    warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local Qdrant")
    results: dict[str, Any] = {}

    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with qdrant_local(shm) as backend:
        results["qdrant-local (tmpfs)"] = measure(backend, args.points, args.queries, args.switches)
    with qdrant_local(None) as backend:
        results["qdrant-local (disk), publish only"] = publish_only(backend, args.disk_points)

    if os.environ.get("QDRANT_URL"):
        from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

        def open_qdrant(tenant: str) -> VectorBackend:
            return QdrantBackend.connect(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"),
                                         tenant_id=tenant, read_only=False)

        with on_server(open_qdrant) as backend:
            results["qdrant-server"] = measure(backend, args.points, args.queries, args.switches)
    else:
        log("QDRANT_URL is not set: no Qdrant server figures")
    if os.environ.get("WEAVIATE_URL"):
        from knowledge_plane.storage.vector_backends.weaviate import WeaviateBackend

        def open_weaviate(tenant: str) -> VectorBackend:
            return WeaviateBackend.connect(url=os.environ["WEAVIATE_URL"], api_key=os.environ.get("WEAVIATE_API_KEY"),
                                           tenant_id=tenant, read_only=False)

        with on_server(open_weaviate) as backend:
            results["weaviate"] = measure(backend, args.points, args.queries, args.switches)
    else:
        log("WEAVIATE_URL is not set: no Weaviate figures")

    print(f"\nVector backends — {args.points} synthetic chunks, {DIM}-d, hybrid top-10 with tenant + pack filters")
    print(f"{'backend':36} {'points/s':>10} {'publish s':>10} {'switch ms p50/max':>18} {'query ms p50/p95':>17} "
          f"{'service ms p50/p95':>19}")
    for name, r in results.items():
        switch = f"{r['switch_ms_p50']}/{r['switch_ms_max']}" if "switch_ms_p50" in r else "-"
        query = f"{r['query_ms_p50']}/{r['query_ms_p95']}" if "query_ms_p50" in r else "-"
        service = f"{r['service_ms_p50']}/{r['service_ms_p95']}" if "service_ms_p50" in r else "-"
        print(f"{name:36} {r['points_per_second']:>10} {r['publish_seconds']:>10} {switch:>18} {query:>17} "
              f"{service:>19}")
    print(f"\nNote: {NOTE}")
    print("On disk, local mode commits every point to SQLite separately, hence the second line.")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "note": NOTE}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
