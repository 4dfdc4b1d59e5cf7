"""Vector-store backends: publish immutable index versions to Qdrant or Weaviate, serve them through an alias.

The build plane publishes each index version into a collection of its own and then moves the
namespace's alias to it in one atomic call; rolling back is moving the alias to another kept
version. The query service searches through the alias only, never a version collection, with
read-only credentials. The default ``local`` backend needs none of this (the service reads the
immutable version files itself), so ``open_vector_backend`` returns None for it.

Each version also holds one record that is not a chunk (``VERSION_INFO_ID``, no vector, a
tenant no caller can have): the model and dimension the vectors were made with, the version's
term statistics (what the service's gate needs to compute the same lexical coverage as the local
index, so one calibration serves every backend), and its approved facts. It is written last, so
a version without it is incomplete.

The registry stays the record of versions and aliases (Qdrant's aliases are not in its
snapshots); a backend mirrors it. Which backend and how to reach it is the ``vector_store``
section of ``knowledge_plane.settings.Settings``:

    KNOWLEDGE_VECTOR_BACKEND   local | qdrant | weaviate                  (default local)
    QDRANT_URL / QDRANT_PATH   a Qdrant server, or a directory for qdrant-client's local mode
    QDRANT_API_KEY             the build plane's key, or a read-only key for the query service
    WEAVIATE_URL               http(s)://host[:port][?grpc_port=N] (gRPC on the same host, 50051)
    WEAVIATE_API_KEY           likewise write or read-only
    KNOWLEDGE_VECTOR_COLLECTIONS     shards, replicas, write consistency per namespace (collection_sizing)
    KNOWLEDGE_VECTOR_UPLOAD_WORKERS  Qdrant batches upserted at once (default 1)
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge_plane.domain.embedding_model import MODEL_NAME, RELEVANCE_MODEL
from knowledge_plane.domain.lexical import TermStats, lexical_text
from knowledge_plane.storage.collection_sizing import CollectionSizing, parse_collection_sizing

if TYPE_CHECKING:
    from knowledge_plane.settings import Settings

BACKENDS = ("local", "qdrant", "weaviate")
# Versions end up inside collection names; the registry's form (v20250101-120000-abc123) fits.
# No '_' and no upper case, so a backend can use those as unambiguous separators.
VERSION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Point ids are derived from chunk ids, so re-publishing a version writes the same points.
CHUNK_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "knowledge-plane:chunk")
FILTER_KEYS = ("tenant_id", "pack_ids", "unpacked", "source_app", "source_apps", "workspace")
VERSION_INFO_ID = str(uuid.uuid5(CHUNK_NAMESPACE, "knowledge-plane:version-info"))
VERSION_INFO_TENANT = "-"  # not a valid tenant id: the record never passes a search's tenant filter
VERSION_INFO_FORMAT = 1
RRF_K = 60  # Qdrant's reciprocal-rank fusion constant (local versions are ordered by a fused score)


class ReadOnlyBackend(PermissionError):
    """A write was attempted through a backend opened for the query service."""


class VersionInUse(RuntimeError):
    """The version's collection is what the alias serves; it cannot be deleted or replaced."""


@dataclass(frozen=True)
class VectorSettings:
    """Which vector store to use and how to reach it, for one tenant; see ``of``."""

    backend: str = "local"
    tenant_id: str = "default"
    qdrant_url: str | None = None
    qdrant_path: str | None = None
    qdrant_api_key: str | None = field(default=None, repr=False)
    weaviate_url: str | None = None
    weaviate_api_key: str | None = field(default=None, repr=False)
    collections: Mapping[str, CollectionSizing] = field(default_factory=dict)  # see collection_sizing
    upload_workers: int = 1  # Qdrant batches in flight at once when publishing

    @classmethod
    def of(cls, settings: Settings) -> VectorSettings:
        """The ``vector_store`` section of the process's settings, for its tenant."""
        section = settings.vector_store
        vector_settings = cls(
            backend=section.backend,
            tenant_id=settings.tenant_id,
            qdrant_url=section.qdrant_url,
            qdrant_path=section.qdrant_path,
            qdrant_api_key=section.qdrant_api_key.get_secret_value() if section.qdrant_api_key else None,
            weaviate_url=section.weaviate_url,
            weaviate_api_key=section.weaviate_api_key.get_secret_value() if section.weaviate_api_key else None,
            collections=parse_collection_sizing(section.collections),
            upload_workers=section.upload_workers,
        )
        vector_settings.validate()
        return vector_settings

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"KNOWLEDGE_VECTOR_BACKEND must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "qdrant" and bool(self.qdrant_url) == bool(self.qdrant_path):
            raise ValueError(
                "KNOWLEDGE_VECTOR_BACKEND=qdrant needs exactly one of QDRANT_URL (a server) "
                "or QDRANT_PATH (qdrant-client local mode)"
            )
        if self.backend == "weaviate" and not self.weaviate_url:
            raise ValueError("KNOWLEDGE_VECTOR_BACKEND=weaviate needs WEAVIATE_URL")
        if self.upload_workers < 1:
            raise ValueError(f"KNOWLEDGE_VECTOR_UPLOAD_WORKERS must be at least 1, got {self.upload_workers}")


@dataclass(frozen=True)
class PublishResult:
    collection: str
    points: int
    reused: bool  # the version's collection was already complete: nothing was uploaded


@dataclass(frozen=True)
class StoredHit:
    """One passage found through an alias: its payload, the store's fusion score, its stored vector."""

    payload: dict[str, Any]
    score: float  # the store's fused score: it orders one result list and means nothing outside it
    vector: np.ndarray  # unit length (cosine collections), so ``vector @ query`` is the cosine
    relevance: np.ndarray | None = None  # the relevance model's vector, when asked for and stored

    @property
    def chunk_id(self) -> str:
        return str(self.payload.get("chunk_id"))


@dataclass(frozen=True)
class VersionInfo:
    """The version record published beside the chunks (see the module docstring)."""

    namespace: str
    version: str
    model: str
    dimension: int
    chunks: int
    terms: TermStats
    facts: list[dict[str, Any]]
    relevance_model: str | None = None  # the chunks carry this relevance model's vectors too

    @classmethod
    def of(cls, namespace: str, version: str, payloads: list[dict[str, Any]],
           facts: list[dict[str, Any]], dimension: int, relevance: bool = False) -> VersionInfo:
        terms = TermStats.from_texts(lexical_text(p) for p in payloads)
        return cls(namespace, version, MODEL_NAME, dimension, len(payloads), terms, list(facts),
                   RELEVANCE_MODEL if relevance else None)

    def to_payload(self) -> dict[str, Any]:
        return {"record": "version_info", "format": VERSION_INFO_FORMAT, "tenant_id": VERSION_INFO_TENANT,
                "namespace": self.namespace, "version": self.version, "model": self.model,
                "dimension": self.dimension, "chunks": self.chunks, "terms": self.terms.to_dict(),
                "facts": self.facts, "relevance_model": self.relevance_model}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> VersionInfo:
        if payload.get("record") != "version_info" or payload.get("format") != VERSION_INFO_FORMAT:
            raise ValueError(f"not a version record of format {VERSION_INFO_FORMAT}: "
                             f"record={payload.get('record')!r}, format={payload.get('format')!r}")
        return cls(str(payload["namespace"]), str(payload["version"]), str(payload["model"]),
                   int(payload["dimension"]), int(payload["chunks"]), TermStats.from_dict(payload["terms"]),
                   list(payload.get("facts") or []), payload.get("relevance_model") or None)


def stored_payload(payload: Mapping[str, Any], version: str) -> dict[str, Any]:
    """A chunk's payload as stored: with the version it belongs to, so a hit says where it came from."""
    return {**payload, "index_version": version}


@dataclass(frozen=True)
class SearchFilters:
    """What a search may see. tenant_id is mandatory; pack_ids None means every pack (and no pack);
    with ``unpacked`` the passages outside every pack pass beside those of ``pack_ids``;
    source_apps None means every application."""

    tenant_id: str
    pack_ids: tuple[str, ...] | None = None
    source_apps: tuple[str, ...] | None = None
    unpacked: bool = False
    workspace: str | None = None

    @classmethod
    def parse(cls, filters: Mapping[str, Any]) -> SearchFilters:
        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            # A misspelt key must not silently widen what a caller sees.
            raise ValueError(f"unknown search filter(s) {sorted(unknown)}; expected {', '.join(FILTER_KEYS)}")
        tenant_id = filters.get("tenant_id")
        if not tenant_id:
            raise ValueError("a search must be filtered on tenant_id")
        packs = filters.get("pack_ids")
        if isinstance(packs, str):
            packs = [packs]
        apps = filters.get("source_apps")
        if isinstance(apps, str):
            apps = [apps]
        one = filters.get("source_app")
        if one:  # one application: a list of one, or narrowing the list
            apps = [one] if apps is None else [a for a in apps if a == one]
        return cls(str(tenant_id), None if packs is None else tuple(packs), None if apps is None else tuple(apps),
                   bool(filters.get("unpacked")), filters.get("workspace") or None)


def point_uuid(chunk_id: str) -> str:
    return str(uuid.uuid5(CHUNK_NAMESPACE, chunk_id))


def validate_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise ValueError(f"invalid index version {version!r}: expected lowercase letters, digits and '-'")
    return version


def check_points(vectors: np.ndarray, payloads: list[dict[str, Any]]) -> np.ndarray:
    """The vectors as a C-contiguous float32 matrix, after checking they match the payloads."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(payloads):
        raise ValueError(f"expected one vector per payload, got {matrix.shape} for {len(payloads)} payloads")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors contain NaN or infinite values")
    ids = [p.get("chunk_id") for p in payloads]
    if not all(ids):
        raise ValueError("every payload needs a chunk_id: point ids are derived from it")
    if len(set(ids)) != len(ids):
        # Two payloads would become one point and the version would never look complete.
        raise ValueError("chunk_id values must be unique within a version")
    return matrix


class VectorBackend(ABC):
    """One index version per collection, one alias per namespace, searches through the alias only."""

    kind: str
    # Whether the store keeps the relevance model's vectors beside the chunks' (a second named vector),
    # so the query service's gate judges its namespaces as it does local versions.
    stores_relevance = False

    def __init__(self, tenant_id: str, read_only: bool):
        self.tenant_id = tenant_id
        self.read_only = read_only

    def _require_write(self, operation: str) -> None:
        if self.read_only:
            raise ReadOnlyBackend(f"{self.kind}: {operation} refused: this backend was opened read-only")

    @abstractmethod
    def collection_name(self, namespace: str, version: str) -> str:
        """The collection holding ``namespace@version``: valid for the store, deterministic."""

    @abstractmethod
    def alias_name(self, namespace: str) -> str:
        """The alias the query service reads ``namespace`` through."""

    def publish(
        self,
        namespace: str,
        version: str,
        vectors: np.ndarray,
        payloads: list[dict[str, Any]],
        facts: list[dict[str, Any]] | None = None,
        relevance: np.ndarray | None = None,
    ) -> PublishResult:
        """Create the version's collection, upload its points, then its version record (with
        ``facts``, the approved facts published with the version, and ``relevance``, the relevance
        model's vectors, when the store keeps them); reuse it if already complete."""
        self._require_write("publish")
        matrix = check_points(vectors, payloads)
        extra = check_points(relevance, payloads) if relevance is not None and self.stores_relevance else None
        name = self.collection_name(namespace, version)

        def record() -> VersionInfo:  # tokenises every chunk: only when a record is to be written
            return VersionInfo.of(namespace, version, payloads, facts or [], matrix.shape[1], extra is not None)

        if self._exists(name):
            has_info = self._read_info(name) is not None
            if self._count(name) == len(payloads) + has_info:
                # Complete, or every chunk is there and only the record is missing (a publish that
                # stopped just before it, or one made before records existed): finish it.
                self._complete(name)
                if not has_info:
                    self._write_info(name, record())
                return PublishResult(name, len(payloads), reused=True)
            if self.current_alias_target(namespace) == version:
                raise VersionInUse(f"{name} is incomplete but served by {self.alias_name(namespace)}")
            # A publish that stopped half-way: versions are immutable, so rebuild it whole.
            self._drop(name)
        self._create(name, namespace, version, matrix.shape[1], None if extra is None else extra.shape[1])
        self._upload(name, namespace, matrix, [stored_payload(p, version) for p in payloads], extra)
        self._write_info(name, record())  # last: its presence says the version is complete
        return PublishResult(name, len(payloads), reused=False)

    def read_version_info(self, namespace: str, version: str) -> VersionInfo | None:
        """The version's record, or None when the version is absent or incomplete."""
        name = self.collection_name(namespace, version)
        return self._read_info(name) if self._exists(name) else None

    def _complete(self, name: str) -> None:  # noqa: B027 - a hook; most stores have nothing to redo
        """Store housekeeping for a collection whose chunks are all there, before it is reused."""

    # The store's primitives, on collection names, used by publish and read_version_info.
    @abstractmethod
    def _exists(self, name: str) -> bool: ...

    @abstractmethod
    def _count(self, name: str) -> int:
        """Every object in the collection, the version record included."""

    @abstractmethod
    def _drop(self, name: str) -> None: ...

    @abstractmethod
    def _create(self, name: str, namespace: str, version: str, dimension: int,
                relevance_dimension: int | None = None) -> None: ...

    @abstractmethod
    def _upload(self, name: str, namespace: str, vectors: np.ndarray, payloads: list[dict[str, Any]],
                relevance: np.ndarray | None = None) -> None:
        """Write one object per row, its id from its chunk_id (``point_uuid``); with its relevance
        vector when given (only to a store that ``stores_relevance``)."""

    @abstractmethod
    def _write_info(self, name: str, info: VersionInfo) -> None: ...

    @abstractmethod
    def _read_info(self, name: str) -> VersionInfo | None: ...

    @abstractmethod
    def switch_alias(self, namespace: str, version: str) -> None:
        """Point the namespace's alias at ``version`` atomically (readers see the old or the new one)."""

    def rollback(self, namespace: str, version: str) -> None:
        """Serve an older kept version again: the same atomic switch."""
        self.switch_alias(namespace, version)

    @abstractmethod
    def current_alias_target(self, namespace: str) -> str | None:
        """The version the alias points at, or None when the namespace was never switched."""

    def alias_targets(self, namespaces: list[str]) -> dict[str, str | None]:
        """{namespace: version its alias points at}; a backend may answer in one request."""
        return {ns: self.current_alias_target(ns) for ns in namespaces}

    @abstractmethod
    def delete_version(self, namespace: str, version: str) -> None:
        """Drop a version's collection; refused for the one the alias points at."""

    @abstractmethod
    def list_versions(self, namespace: str) -> list[str]:
        """Versions of the namespace present in the store, sorted by name."""

    def search(
        self,
        namespace: str,
        query_vector: np.ndarray,
        query_text: str,
        top_k: int,
        filters: Mapping[str, Any],
        with_relevance: bool = False,
    ) -> list[StoredHit]:
        """Hybrid search through the alias, best first, with each passage's stored vector (and its
        relevance vector with ``with_relevance``, from a store that keeps them).

        ``filters``: tenant_id (required), pack_ids (any of a list; with unpacked, or no pack),
        source_apps (any of a list) or source_app, workspace. They apply before
        ranking, so top_k=1 returns the best allowed passage. The score is the store's fusion
        score (not a cosine), comparable only within one result list; the query service gates on
        the cosine of the returned vector and the lexical coverage, as for the local index.
        """
        allowed = SearchFilters.parse(filters)
        if (allowed.pack_ids == () and not allowed.unpacked) or allowed.source_apps == ():
            return []  # an explicit empty list of packs or applications grants nothing
        return self._search(namespace, np.asarray(query_vector, dtype=np.float32).ravel(), query_text, top_k, allowed,
                            with_relevance and self.stores_relevance)

    @abstractmethod
    def _search(self, namespace: str, query_vector: np.ndarray, query_text: str, top_k: int,
                allowed: SearchFilters, with_relevance: bool = False) -> list[StoredHit]:
        """The store's hybrid search through the alias, filtered by ``allowed`` before ranking."""

    def close(self) -> None:  # noqa: B027 - a backend without a connection has nothing to close
        pass

    def __enter__(self) -> VectorBackend:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_vector_backend(settings_like: VectorSettings | Settings, read_only: bool) -> VectorBackend | None:
    """The configured backend, or None for ``local``.

    ``settings_like`` is a VectorSettings (default retry policies), or the process's ``Settings`` (its
    ``vector_store`` section, tenant and ``retries`` section). The build plane opens it with
    ``read_only=False``; the query service with ``read_only=True`` (and a read-only key), which also
    retries transient failures for a shorter time (the query policy).
    """
    from knowledge_plane.storage.retries import RetryPolicy, query_policy

    if isinstance(settings_like, VectorSettings):
        settings = settings_like
        settings.validate()
        retry = query_policy() if read_only else RetryPolicy()
    else:
        settings = VectorSettings.of(settings_like)
        retry = settings_like.retries.policy(query=read_only)
    if settings.backend == "qdrant":
        from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

        return QdrantBackend.connect(
            url=settings.qdrant_url,
            path=settings.qdrant_path,
            api_key=settings.qdrant_api_key,
            tenant_id=settings.tenant_id,
            read_only=read_only,
            retry=retry,
            collections=settings.collections,
            upload_workers=settings.upload_workers,
        )
    if settings.backend == "weaviate":
        from knowledge_plane.storage.vector_backends.weaviate import WeaviateBackend

        assert settings.weaviate_url  # validate() guarantees it
        return WeaviateBackend.connect(
            url=settings.weaviate_url,
            api_key=settings.weaviate_api_key,
            tenant_id=settings.tenant_id,
            read_only=read_only,
            retry=retry,
            collections=settings.collections,
        )
    return None
