"""Qdrant backend: a collection per index version, dense + BM25 sparse vectors, one alias per namespace.

Every point carries two named vectors: "dense" (the embedding, cosine) and "bm25" (sparse term
weights). The BM25 term-frequency part is computed here, per version, with the project's
French-aware tokenizer (knowledge_plane.domain.lexical: lower case, accents folded, split on non-alphanumerics, stop
words dropped, light stemming) and hashed token ids; the sparse vector is declared with
``Modifier.IDF`` so the server multiplies in IDF from its own statistics at query time. A search
runs both through the Query API — a dense and a sparse prefetch, each carrying the payload
filter, fused with RRF (k = RRF_K; a parameterised RRF needs Qdrant 1.16 or later) — so filtering
happens before ranking, and returns each hit's dense vector for the gate, and its relevance vector
(a second named vector, ``RELEVANCE``, stored without an HNSW graph) when the version has them.
The version record (knowledge_plane.storage.vector_backends.VersionInfo) is a point with no vector, upserted last.

The alias switch is one ``update_collection_aliases`` request holding delete + create, which Qdrant
applies atomically. The same code runs against a server (``QdrantClient(url=…)``) and against
qdrant-client's local mode (``QdrantClient(path=…)``), which is brute force in pure Python and
locks its directory: a test double, not a store to serve from. Backends opened on the same path
in one process share one client (reference-counted), so a build and a query service in one
process can both use it.

A namespace's collections are created with its shards, replicas and write consistency
(knowledge_plane.storage.collection_sizing; none: the server's defaults, which local mode ignores
anyway). A version's points go up in batches of ``UPLOAD_BATCH``, ``upload_workers`` of them in
flight at once from a thread pool, each batch retried on its own; local mode's pure-Python store
is not safe for concurrent writes, so there the batches are built in parallel but written one at a time.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import tenacity
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from knowledge_plane.domain.ids import namespace_slug, validate_tenant_id
from knowledge_plane.domain.lexical import lexical_text, tokenize
from knowledge_plane.storage.collection_sizing import CollectionSizing, sizing_for
from knowledge_plane.storage.retries import P, RetryPolicy, T, qdrant_transient
from knowledge_plane.storage.vector_backends import (
    RRF_K,
    VERSION_INFO_ID,
    VERSION_RE,
    SearchFilters,
    StoredHit,
    VectorBackend,
    VersionInfo,
    VersionInUse,
    point_uuid,
    validate_version,
)

DENSE, SPARSE = "dense", "bm25"
RELEVANCE = "relevance"  # the relevance model's vectors, a second named dense vector (never searched)
K1, B = 1.2, 0.75  # BM25 constants, the same as knowledge_plane.domain.lexical's index
INDEXED_FIELDS = ("tenant_id", "pack_id", "source_app", "workspace", "namespace", "doc_id", "chunk_id")
UPLOAD_BATCH = 256
MIN_CANDIDATES = 50  # per prefetch: RRF can only reorder what the prefetches found
# Qdrant counts ranks from 0 (the best scores 1/k): k + 1 gives the local 1/(60 + rank from 1).
QDRANT_RRF_K = RRF_K + 1


def token_id(token: str) -> int:
    """A stable 32-bit id for a term: hashing means no vocabulary to ship from build to query."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def bm25_vectors(texts: list[str]) -> list[models.SparseVector | None]:
    """BM25 term weights without IDF (Qdrant adds it); None for a text with no indexable term."""
    tokenized = [tokenize(t) for t in texts]
    average = (sum(map(len, tokenized)) / len(tokenized)) if tokenized else 0.0
    out: list[models.SparseVector | None] = []
    for tokens in tokenized:
        if not tokens:
            out.append(None)
            continue
        # Counting by id also merges the rare hash collision: indices must be unique per vector.
        counts = Counter(token_id(t) for t in tokens)
        norm = K1 * (1 - B + B * len(tokens) / (average or 1.0))
        indices = sorted(counts)
        values = [counts[i] * (K1 + 1) / (counts[i] + norm) for i in indices]
        out.append(models.SparseVector(indices=indices, values=values))
    return out


def query_sparse_vector(text: str) -> models.SparseVector | None:
    """Each distinct query term once, weight 1: the IDF modifier makes it a BM25 query."""
    ids = sorted({token_id(t) for t in tokenize(text)})
    return models.SparseVector(indices=ids, values=[1.0] * len(ids)) if ids else None


class _LocalClients:
    """One local-mode client per directory in this process, closed when its last backend closes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[QdrantClient, int]] = {}

    def acquire(self, path: str) -> QdrantClient:
        with self._lock:
            client, users = self._clients.get(path) or (_open_local(path), 0)
            self._clients[path] = (client, users + 1)
            return client

    def release(self, path: str) -> None:
        with self._lock:
            client, users = self._clients[path]
            if users > 1:
                self._clients[path] = (client, users - 1)
            else:
                del self._clients[path]
                client.close()


_local_clients = _LocalClients()


def _held_by_another_process(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and "already accessed by another instance" in str(exc)


# Local mode locks its directory for one process. Two builds at once each hold it only for the
# stage that publishes or switches an alias, so the second waits for the first to close it.
@tenacity.retry(retry=tenacity.retry_if_exception(_held_by_another_process), reraise=True,
                wait=tenacity.wait_random_exponential(multiplier=0.2, max=5), stop=tenacity.stop_after_delay(300))
def _open_local(path: str) -> QdrantClient:
    return QdrantClient(path=path)


class QdrantBackend(VectorBackend):
    kind = "qdrant"
    stores_relevance = True  # a second named vector, RELEVANCE

    def __init__(self, client: QdrantClient, tenant_id: str, read_only: bool, local_path: str | None = None,
                 retry: RetryPolicy | None = None, collections: Mapping[str, CollectionSizing] | None = None,
                 upload_workers: int = 1):
        super().__init__(validate_tenant_id(tenant_id), read_only)
        if upload_workers < 1:
            raise ValueError(f"upload_workers must be at least 1, got {upload_workers}")
        self.client = client
        self.retry = retry or RetryPolicy()
        self.collections = dict(collections or {})
        self.upload_workers = upload_workers
        self._local_path = local_path  # set when the client is a shared local-mode one
        options = client.init_options
        self._local = options.get("path") is not None or options.get("location") == ":memory:"
        self._closed = False

    @classmethod
    def connect(
        cls,
        *,
        tenant_id: str,
        read_only: bool,
        url: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        collections: Mapping[str, CollectionSizing] | None = None,
        upload_workers: int = 1,
    ) -> QdrantBackend:
        sizing: dict[str, Any] = {"collections": collections, "upload_workers": upload_workers}
        if url:
            return cls(QdrantClient(url=url, api_key=api_key, timeout=60), tenant_id, read_only, retry=retry,
                       **sizing)
        if path:
            return cls(_local_clients.acquire(path), tenant_id, read_only, local_path=path, retry=retry, **sizing)
        raise ValueError("Qdrant needs a server URL or a local-mode path")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._local_path is not None:
            _local_clients.release(self._local_path)
        else:
            self.client.close()

    def _call(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A client call, retried on transient failures (knowledge_plane.storage.retries)."""
        return self.retry.call(f"qdrant {what}", qdrant_transient, fn, *args, **kwargs)

    # -- names ------------------------------------------------------------------------------
    def alias_name(self, namespace: str) -> str:
        # Tenant, namespace slug and version are lower case, so the upper-case markers make the
        # name unambiguous: a collection name parses back to exactly one (tenant, namespace, version).
        return f"KP_{self.tenant_id}_NS_{namespace_slug(namespace)}"

    def collection_name(self, namespace: str, version: str) -> str:
        return f"{self.alias_name(namespace)}_V_{validate_version(version)}"

    def _version_of(self, namespace: str, collection: str) -> str | None:
        prefix = self.alias_name(namespace) + "_V_"
        version = collection.removeprefix(prefix)
        return version if collection.startswith(prefix) and VERSION_RE.match(version) else None

    # -- build plane ------------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        return self._call(f"collection_exists {name}", self.client.collection_exists, name)

    def _count(self, name: str) -> int:
        return self._call(f"count {name}", self.client.count, name, exact=True).count

    def _drop(self, name: str) -> None:
        self._call(f"delete_collection {name}", self.client.delete_collection, name)

    def _create(self, name: str, namespace: str, version: str, dimension: int,
                relevance_dimension: int | None = None) -> None:
        sizing = sizing_for(self.collections, namespace)
        vectors = {DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)}
        if relevance_dimension is not None:
            # Only read back with the hits, never searched: no HNSW graph to build or keep in memory.
            vectors[RELEVANCE] = models.VectorParams(size=relevance_dimension, distance=models.Distance.COSINE,
                                                     hnsw_config=models.HnswConfigDiff(m=0), on_disk=True)

        def create_unless_present() -> None:
            # A retry after a create that landed but whose answer was lost must not fail on "exists".
            if not self.client.collection_exists(name):
                self.client.create_collection(
                    name,
                    vectors_config=vectors,
                    sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                    # None is not sent: the server's defaults, as without KNOWLEDGE_VECTOR_COLLECTIONS.
                    shard_number=sizing.shards,
                    replication_factor=sizing.replicas,
                    write_consistency_factor=sizing.write_factor(),
                )

        self._call(f"create_collection {name}", create_unless_present)
        self._index_payload(name)

    def _complete(self, name: str) -> None:
        self._index_payload(name)  # in case an earlier publish stopped right after the points

    def _upload(self, name: str, namespace: str, vectors: np.ndarray, payloads: list[dict[str, Any]],
                relevance: np.ndarray | None = None) -> None:
        sparse = bm25_vectors([lexical_text(p) for p in payloads])
        one_writer: AbstractContextManager[Any] = threading.Lock() if self._local else nullcontext()

        def send(start: int) -> None:
            points = []
            for row in range(start, min(start + UPLOAD_BATCH, len(payloads))):
                vector: dict[str, Any] = {DENSE: vectors[row].tolist()}
                if relevance is not None:
                    vector[RELEVANCE] = relevance[row].tolist()
                if sparse[row] is not None:
                    vector[SPARSE] = sparse[row]
                points.append(models.PointStruct(id=point_uuid(payloads[row]["chunk_id"]), vector=vector,
                                                 payload=payloads[row]))
            # Points are upserted by id (from the chunk id): sending a batch twice, or batches in any
            # order, writes each point once. Each batch is retried alone.
            with one_writer:
                self._call(f"upsert {name}", self.client.upsert, name, points=points, wait=True)

        with ThreadPoolExecutor(self.upload_workers, thread_name_prefix="qdrant-upload") as pool:
            futures = [pool.submit(send, start) for start in range(0, len(payloads), UPLOAD_BATCH)]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                # A batch failed after its retries: the version is incomplete whatever else lands
                # (the next publish replaces it), so the batches not started yet are not sent.
                for future in futures:
                    future.cancel()
                raise

    def _write_info(self, name: str, info: VersionInfo) -> None:
        record = models.PointStruct(id=VERSION_INFO_ID, vector={}, payload=info.to_payload())
        self._call(f"upsert {name}", self.client.upsert, name, points=[record], wait=True)

    def _read_info(self, name: str) -> VersionInfo | None:
        records = self._call(f"retrieve {name}", self.client.retrieve, name, ids=[VERSION_INFO_ID],
                             with_payload=True, with_vectors=False)
        return VersionInfo.from_payload(records[0].payload or {}) if records else None

    def _index_payload(self, name: str) -> None:
        for field_name in INDEXED_FIELDS:
            # Creating an index that exists is a no-op for Qdrant: safe to retry.
            self._call(f"create_payload_index {name}", self.client.create_payload_index, name, field_name,
                       models.PayloadSchemaType.KEYWORD, wait=True)

    def switch_alias(self, namespace: str, version: str) -> None:
        self._require_write("switch_alias")
        target = self.collection_name(namespace, version)
        if not self._exists(target):
            raise LookupError(f"{namespace}@{version} is not published to Qdrant (no collection {target})")
        alias = self.alias_name(namespace)
        # Delete + create in ONE request: Qdrant applies the list atomically, so a reader resolves
        # the alias to the old collection or the new one, never to none. Sent again, it sets the
        # same target: a retry is harmless.
        self._call(
            f"update_collection_aliases {alias}",
            self.client.update_collection_aliases,
            change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)),
                models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name=alias)),
            ]
        )

    def current_alias_target(self, namespace: str) -> str | None:
        return self.alias_targets([namespace])[namespace]

    def alias_targets(self, namespaces: list[str]) -> dict[str, str | None]:
        aliases = self._call("get_aliases", self.client.get_aliases).aliases  # one request
        targets = {a.alias_name: a.collection_name for a in aliases}
        out: dict[str, str | None] = {}
        for namespace in namespaces:
            collection = targets.get(self.alias_name(namespace))
            out[namespace] = self._version_of(namespace, collection) if collection else None
        return out

    def delete_version(self, namespace: str, version: str) -> None:
        self._require_write("delete_version")
        if self.current_alias_target(namespace) == version:
            raise VersionInUse(f"{namespace}@{version} is served by {self.alias_name(namespace)}; switch it first")
        self._drop(self.collection_name(namespace, version))

    def list_versions(self, namespace: str) -> list[str]:
        names = (c.name for c in self._call("get_collections", self.client.get_collections).collections)
        return sorted(v for v in (self._version_of(namespace, n) for n in names) if v)

    # -- query service ----------------------------------------------------------------------
    def _search(self, namespace: str, query_vector: np.ndarray, query_text: str, top_k: int,
                allowed: SearchFilters, with_relevance: bool = False) -> list[StoredHit]:
        condition = _payload_filter(allowed)
        limit = max(top_k, MIN_CANDIDATES)
        dense = query_vector.tolist()
        prefetch = [models.Prefetch(query=dense, using=DENSE, filter=condition, limit=limit)]
        sparse = query_sparse_vector(query_text)
        if sparse is not None:
            prefetch.append(models.Prefetch(query=sparse, using=SPARSE, filter=condition, limit=limit))
        alias = self.alias_name(namespace)
        try:
            response = self._call(
                f"query_points {alias}",
                self.client.query_points,
                alias,
                prefetch=prefetch,
                query=models.RrfQuery(rrf=models.Rrf(k=QDRANT_RRF_K)),
                limit=top_k,
                with_payload=True,
                with_vectors=[DENSE, RELEVANCE] if with_relevance else [DENSE],
            )
        except (ValueError, UnexpectedResponse) as exc:  # local mode raises ValueError, a server 404
            if self.current_alias_target(namespace) is None:
                raise LookupError(f"{namespace} has no published version in Qdrant (no alias {alias})") from exc
            raise
        return [StoredHit(point.payload or {}, float(point.score), _dense(point.vector),
                          _named(point.vector, RELEVANCE) if with_relevance else None) for point in response.points]


def _dense(vector: Any) -> np.ndarray:
    value = vector.get(DENSE) if isinstance(vector, dict) else vector
    return np.asarray(value if value is not None else (), dtype=np.float32)


def _named(vector: Any, name: str) -> np.ndarray | None:
    """A named vector of a point, None when the point has none (a version published without it)."""
    value = vector.get(name) if isinstance(vector, dict) else None
    return None if value is None else np.asarray(value, dtype=np.float32)


def _payload_filter(allowed: SearchFilters) -> models.Filter:
    must: list[models.Condition] = [
        models.FieldCondition(key="tenant_id", match=models.MatchValue(value=allowed.tenant_id))
    ]
    if allowed.pack_ids is not None:
        packs: list[models.Condition] = [models.IsEmptyCondition(is_empty=models.PayloadField(key="pack_id"))] \
            if allowed.unpacked else []
        if allowed.pack_ids:
            packs.append(models.FieldCondition(key="pack_id", match=models.MatchAny(any=list(allowed.pack_ids))))
        must.append(models.Filter(should=packs))
    if allowed.source_apps is not None:
        must.append(models.FieldCondition(key="source_app", match=models.MatchAny(any=list(allowed.source_apps))))
    if allowed.workspace is not None:
        must.append(models.FieldCondition(key="workspace", match=models.MatchValue(value=allowed.workspace)))
    return models.Filter(must=must)
