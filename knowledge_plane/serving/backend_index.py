"""A namespace the query service reads through a vector store's alias (Qdrant, Weaviate).

The store ranks (its hybrid dense + keyword fusion, filters applied before ranking) and returns
each passage with its stored vector, and its relevance vector when the store keeps them (Qdrant).
The gate then judges every passage exactly as for a local version: by the relevance model's cosine
when there is one, else by ``dense_share × cosine + (1 − dense_share) × coverage``, with the cosine
taken from the returned vector and the coverage from the version's term statistics, published in
the version's record. So the thresholds calibrated on the local index hold, whatever the backend.

Every hit names the version it came from (the alias is resolved once per store request, so one
request to a namespace sees one version). The snapshot's version is the one the alias pointed to
when it was checked; if the alias moves before the next poll, hits come from the new version and
are scored with that version's statistics, read once and kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from knowledge_plane.domain.lexical import covered, lexical_text
from knowledge_plane.serving.retrieval import Filters, Hit, RetrievalConfig, gate_score
from knowledge_plane.storage.vector_backends import VectorBackend, VersionInfo

KEPT_VERSIONS = 4  # term statistics of the versions met through the alias, newest kept


@dataclass(frozen=True)
class StoredPassage:
    """One passage a store returned: what a Hit needs of its source."""

    namespace: str
    version: str
    stored: dict[str, Any]

    def payload(self, row: int = 0) -> dict[str, Any]:
        return self.stored

    def truth_level(self, row: int = 0) -> str:
        return str(self.stored.get("truth_level") or "")


class BackendIndex:
    """One namespace served through ``backend``'s alias, as of the version record ``info``."""

    def __init__(self, backend: VectorBackend, info: VersionInfo):
        self.backend = backend
        self.info = info
        self.namespace = info.namespace
        self.version = info.version
        self.facts = info.facts
        self.manifest = {"namespace": info.namespace, "version": info.version, "model": info.model,
                         "dimension": info.dimension, "backend": backend.kind}
        # The store keeps the relevance model's vectors of this version: the gate judges by them.
        self.has_relevance = info.relevance_model is not None
        self._infos: OrderedDict[str, VersionInfo] = OrderedDict({info.version: info})
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.info.chunks

    def _info(self, version: str) -> VersionInfo:
        with self._lock:
            if version in self._infos:
                return self._infos[version]
        found = self.backend.read_version_info(self.namespace, version) or self.info  # pruned meanwhile: ours
        with self._lock:
            self._infos[version] = found
            while len(self._infos) > KEPT_VERSIONS:
                self._infos.popitem(last=False)
        return found

    def candidates(self, query_vector: np.ndarray, query_text: str, filters: Filters,
                   config: RetrievalConfig, relevance_vector: np.ndarray | None = None) -> list[Hit]:
        """The store's fused ranking of this namespace, each passage scored for the gate."""
        allowed: dict[str, Any] = {"tenant_id": filters.tenant_id, "unpacked": filters.unpacked}
        if filters.pack_ids is not None:
            allowed["pack_ids"] = sorted(filters.pack_ids)
        if filters.source_apps is not None:
            allowed["source_apps"] = sorted(filters.source_apps)
        if filters.workspace is not None:
            allowed["workspace"] = filters.workspace
        query = np.asarray(query_vector, dtype=np.float32).ravel()
        shares: dict[str, dict[str, float]] = {}  # per version answering: the question's terms, weighed once
        hits = []
        wanted = self.has_relevance and relevance_vector is not None
        for found in self.backend.search(self.namespace, query, query_text, config.candidates, allowed, wanted):
            if found.vector.shape != query.shape:
                raise ValueError(f"{self.backend.kind} returned a {found.vector.shape} vector for "
                                 f"{found.chunk_id} in {self.namespace}; the query has {query.shape}")
            version = str(found.payload.get("index_version") or self.version)
            cosine = float(found.vector @ query)
            if version not in shares:
                shares[version] = self._info(version).terms.query_shares(query_text)
            coverage = covered(shares[version], lexical_text(found.payload))
            relevance = (float(found.relevance @ relevance_vector)
                         if found.relevance is not None and relevance_vector is not None else None)
            hits.append(Hit(StoredPassage(self.namespace, version, found.payload), 0, cosine, coverage, 0.0,
                            gate_score(cosine, coverage, config), found.score, relevance))
        return hits
