"""Weaviate backend: a collection per index version (vectorizer none), one collection alias per namespace.

Vectors come from the build plane (``Configure.Vectors.self_provided()``, cosine HNSW); a version
with the gate's relevance vectors has two named vectors, ``default`` (searched) and ``relevance``
(a flat index, only returned with the hits). Keyword
search runs on a ``search_text`` property holding the chunk's terms as the project's French-aware
tokenizer produced them (knowledge_plane.domain.lexical), tokenised on whitespace: Weaviate's BM25 then matches
"référence" and "reference" just as the local and Qdrant backends do. The whole payload is kept as
JSON in ``payload_json``; the fields searches filter on are also properties of their own.

A search is a hybrid query with an explicit alpha (relative-score fusion) through the alias, with
the tenant / pack / source-app filter applied by Weaviate before ranking; it returns each object's
vector for the query service's gate. The version record (knowledge_plane.storage.vector_backends.VersionInfo) is an
object without a vector, inserted last. Switching is an alias
update, one request that Weaviate applies atomically; aliases exist from Weaviate 1.32, and an
older server is refused with an error that says so.

Every call to the server is retried on transient failures (knowledge_plane.storage.retries), and
each retried write is idempotent: batches replace objects by uuid, creates check for presence.

A namespace's collections are created with its shards and replication factor, and its writes sent
at its consistency level (knowledge_plane.storage.collection_sizing; none: the server's defaults).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import weaviate
from weaviate import WeaviateClient
from weaviate.classes.config import (
    Configure,
    ConsistencyLevel,
    DataType,
    Property,
    StopwordsPreset,
    Tokenization,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import Auth
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.collections import Collection
from weaviate.collections.classes.internal import QueryReturn
from weaviate.exceptions import WeaviateBaseError

from knowledge_plane.domain.ids import namespace_slug, validate_tenant_id
from knowledge_plane.domain.lexical import lexical_text, tokenize
from knowledge_plane.storage.collection_sizing import CollectionSizing, sizing_for
from knowledge_plane.storage.retries import P, RetryPolicy, T, weaviate_transient
from knowledge_plane.storage.vector_backends import (
    VERSION_INFO_ID,
    SearchFilters,
    StoredHit,
    VectorBackend,
    VersionInfo,
    VersionInUse,
    point_uuid,
    validate_version,
)

MIN_SERVER_VERSION = (1, 32, 0)
DEFAULT_VECTOR, RELEVANCE_VECTOR = "default", "relevance"  # named vectors of a version with relevance vectors
DEFAULT_ALPHA = 0.5  # equal say for vectors and keywords, like the local fused score
DEFAULT_GRPC_PORT = 50051
FILTER_FIELDS = ("tenant_id", "pack_id", "source_app", "workspace", "namespace", "doc_id", "chunk_id")
K1, B = 1.2, 0.75
UPLOAD_BATCH = 256
# The collection description is the record of what a collection holds: names are lossy
# (Weaviate allows no '-') and only a hash keeps them apart.
DESCRIPTION = "Knowledge Plane index {namespace}@{version} (tenant {tenant})"
DESCRIPTION_RE = re.compile(r"^Knowledge Plane index (?P<namespace>\S+)@(?P<version>\S+) \(tenant (?P<tenant>\S+)\)$")


class WeaviateVersionError(RuntimeError):
    """The Weaviate server is too old for collection aliases."""


def require_alias_support(server_version: str) -> None:
    """Refuse a server older than 1.32, where collection aliases appeared."""
    minimum = ".".join(map(str, MIN_SERVER_VERSION))
    numbers = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", server_version or "")
    if numbers is None:
        raise WeaviateVersionError(
            f"cannot read the Weaviate server version from {server_version!r}; "
            f"the weaviate vector backend needs Weaviate {minimum} or later"
        )
    found = tuple(int(n or 0) for n in numbers.groups())
    if found < MIN_SERVER_VERSION:
        raise WeaviateVersionError(
            f"Weaviate server {server_version} does not support collection aliases; the weaviate vector "
            f"backend needs Weaviate {minimum} or later to switch and roll back index versions. "
            "Upgrade the server, or set KNOWLEDGE_VECTOR_BACKEND to local or qdrant."
        )


def _part(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", text.lower())


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:8]


class WeaviateBackend(VectorBackend):
    kind = "weaviate"
    stores_relevance = True  # a second named vector, RELEVANCE_VECTOR

    def __init__(self, client: WeaviateClient, tenant_id: str, read_only: bool, alpha: float = DEFAULT_ALPHA,
                 retry: RetryPolicy | None = None, collections: Mapping[str, CollectionSizing] | None = None):
        super().__init__(validate_tenant_id(tenant_id), read_only)
        self.client = client
        self.alpha = alpha
        self.retry = retry or RetryPolicy()
        self.collections = dict(collections or {})

    @classmethod
    def connect(
        cls, *, url: str, api_key: str | None, tenant_id: str, read_only: bool, alpha: float = DEFAULT_ALPHA,
        retry: RetryPolicy | None = None, collections: Mapping[str, CollectionSizing] | None = None,
    ) -> WeaviateBackend:
        """Connect from a URL: http(s)://host[:port][?grpc_port=N]; Weaviate Cloud hosts are recognised."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"WEAVIATE_URL must look like http(s)://host[:port], got {url!r}")
        auth = Auth.api_key(api_key) if api_key else None
        if parts.hostname.endswith((".weaviate.cloud", ".weaviate.network")):
            if auth is None:
                raise ValueError(f"Weaviate Cloud ({parts.hostname}) needs an API key: set WEAVIATE_API_KEY")
            client = weaviate.connect_to_weaviate_cloud(cluster_url=url, auth_credentials=auth)
        else:
            secure = parts.scheme == "https"
            grpc_port = int(parse_qs(parts.query).get("grpc_port", [DEFAULT_GRPC_PORT])[0])
            client = weaviate.connect_to_custom(
                http_host=parts.hostname,
                http_port=parts.port or (443 if secure else 8080),
                http_secure=secure,
                grpc_host=parts.hostname,
                grpc_port=grpc_port,
                grpc_secure=secure,
                auth_credentials=auth,
            )
        try:
            require_alias_support(str(client.get_meta().get("version", "")))
        except BaseException:
            client.close()
            raise
        return cls(client, tenant_id, read_only, alpha, retry, collections)

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A client call, retried on transient failures (knowledge_plane.storage.retries)."""
        return self.retry.call(f"weaviate {what}", weaviate_transient, fn, *args, **kwargs)

    # -- names ------------------------------------------------------------------------------
    def alias_name(self, namespace: str) -> str:
        slug = namespace_slug(namespace)
        return f"Kp_{_part(self.tenant_id)}_{_part(slug)}_{_digest(self.tenant_id, namespace)}"

    def collection_name(self, namespace: str, version: str) -> str:
        validate_version(version)
        return f"{self.alias_name(namespace)}_V_{_part(version)}_{_digest(self.tenant_id, namespace, version)}"

    def _collections(self, namespace: str) -> dict[str, str]:
        """{collection name: version} for the namespace, read from the collections' descriptions."""
        prefix = self.alias_name(namespace) + "_V_"
        found = {}
        for name, config in self._call("list_all", self.client.collections.list_all, simple=True).items():
            match = DESCRIPTION_RE.match(config.description or "")
            if (
                name.startswith(prefix)
                and match
                and match["tenant"] == self.tenant_id
                and match["namespace"] == namespace
            ):
                found[name] = match["version"]
        return found

    # -- build plane ------------------------------------------------------------------------
    def _exists(self, name: str) -> bool:
        return self._call(f"exists {name}", self.client.collections.exists, name)

    def _count(self, name: str) -> int:
        over_all = self.client.collections.use(name).aggregate.over_all
        return self._call(f"count {name}", over_all, total_count=True).total_count or 0

    def _drop(self, name: str) -> None:
        self._call(f"delete {name}", self.client.collections.delete, name)

    def _writer(self, name: str, namespace: str) -> Collection[Any, Any]:
        """The collection as writes use it: at the namespace's consistency level, if it has one."""
        collection = self.client.collections.use(name)
        level = sizing_for(self.collections, namespace).write_level()
        return collection if level is None else collection.with_consistency_level(ConsistencyLevel(level))

    def _upload(self, name: str, namespace: str, vectors: np.ndarray, payloads: list[dict[str, Any]],
                relevance: np.ndarray | None = None) -> None:
        collection = self._writer(name, namespace)
        for start in range(0, len(payloads), UPLOAD_BATCH):
            rows = range(start, min(start + UPLOAD_BATCH, len(payloads)))
            objects = [
                DataObject(
                    properties=_properties(payloads[row]),
                    uuid=point_uuid(payloads[row]["chunk_id"]),
                    vector=vectors[row].tolist() if relevance is None
                    else {DEFAULT_VECTOR: vectors[row].tolist(), RELEVANCE_VECTOR: relevance[row].tolist()},
                )
                for row in rows
            ]
            # A batch replaces objects of the same uuid (from the chunk id): sending it twice writes it once.
            result = self._call(f"insert_many {name}", collection.data.insert_many, objects)
            if result.has_errors:
                first = next(iter(result.errors.values()))
                raise RuntimeError(f"Weaviate refused {len(result.errors)} objects of {name}: {first.message}")

    def _write_info(self, name: str, info: VersionInfo) -> None:
        properties = {"tenant_id": info.to_payload()["tenant_id"], "payload_json": json.dumps(info.to_payload())}
        data = self._writer(name, info.namespace).data

        def insert_unless_present() -> None:
            # A retry after an insert that landed must not fail on "already exists".
            if not data.exists(VERSION_INFO_ID):
                data.insert(properties=properties, uuid=VERSION_INFO_ID)

        self._call(f"insert {name}", insert_unless_present)

    def _read_info(self, name: str) -> VersionInfo | None:
        query = self.client.collections.use(name).query
        record = self._call(f"fetch_object_by_id {name}", query.fetch_object_by_id, VERSION_INFO_ID,
                            return_properties=["payload_json"])
        return None if record is None else VersionInfo.from_payload(json.loads(str(record.properties["payload_json"])))

    def _create(self, name: str, namespace: str, version: str, dimension: int,
                relevance_dimension: int | None = None) -> None:
        sizing = sizing_for(self.collections, namespace)

        def keyword(field_name: str) -> Property:
            return Property(name=field_name, data_type=DataType.TEXT, tokenization=Tokenization.FIELD,
                            index_searchable=False)

        searched = Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE)
        vector_config: Any = Configure.Vectors.self_provided(vector_index_config=searched)
        if relevance_dimension is not None:
            # Two named vectors; the relevance one is only read back with the hits: a flat index, no graph.
            vector_config = [
                Configure.Vectors.self_provided(name=DEFAULT_VECTOR, vector_index_config=searched),
                Configure.Vectors.self_provided(
                    name=RELEVANCE_VECTOR,
                    vector_index_config=Configure.VectorIndex.flat(distance_metric=VectorDistances.COSINE)),
            ]

        def create_unless_present() -> None:
            # A retry after a create that landed but whose answer was lost must not fail on "exists".
            if self.client.collections.exists(name):
                return
            self.client.collections.create(
                name,
                description=DESCRIPTION.format(namespace=namespace, version=version, tenant=self.tenant_id),
                vector_config=vector_config,
                # Stop words are already gone from search_text; Weaviate's English list must not drop more.
                # Null state: passages outside every pack are found with is_none (actors' pack grants).
                inverted_index_config=Configure.inverted_index(bm25_k1=K1, bm25_b=B, index_null_state=True,
                                                               stopwords_preset=StopwordsPreset.NONE),
                # None is not sent: the server's defaults, as without KNOWLEDGE_VECTOR_COLLECTIONS.
                sharding_config=None if sizing.shards is None else Configure.sharding(desired_count=sizing.shards),
                replication_config=None if sizing.replicas is None else Configure.replication(factor=sizing.replicas),
                properties=[keyword(f) for f in FILTER_FIELDS]
                + [
                    Property(name="search_text", data_type=DataType.TEXT, tokenization=Tokenization.WHITESPACE,
                             index_filterable=False),
                    Property(name="payload_json", data_type=DataType.TEXT, index_filterable=False,
                             index_searchable=False),
                ],
            )

        self._call(f"create {name}", create_unless_present)

    def switch_alias(self, namespace: str, version: str) -> None:
        self._require_write("switch_alias")
        target = self.collection_name(namespace, version)
        if not self._exists(target):
            raise LookupError(f"{namespace}@{version} is not published to Weaviate (no collection {target})")
        alias = self.alias_name(namespace)

        def point_alias() -> None:
            # Read then create or move, as one retried unit: a retry after a create that landed
            # finds the alias and moves it to the same target instead of failing on "exists".
            if self.client.alias.get(alias_name=alias) is None:
                self.client.alias.create(alias_name=alias, target_collection=target)
            else:
                # One PUT that moves the alias: readers resolve it to the old or the new collection.
                self.client.alias.update(alias_name=alias, new_target_collection=target)

        self._call(f"switch alias {alias}", point_alias)

    def current_alias_target(self, namespace: str) -> str | None:
        alias = self._call("alias get", self.client.alias.get, alias_name=self.alias_name(namespace))
        return None if alias is None else self._collections(namespace).get(alias.collection)

    def delete_version(self, namespace: str, version: str) -> None:
        self._require_write("delete_version")
        if self.current_alias_target(namespace) == version:
            raise VersionInUse(f"{namespace}@{version} is served by {self.alias_name(namespace)}; switch it first")
        self._drop(self.collection_name(namespace, version))

    def list_versions(self, namespace: str) -> list[str]:
        return sorted(self._collections(namespace).values())

    # -- query service ----------------------------------------------------------------------
    def _search(self, namespace: str, query_vector: np.ndarray, query_text: str, top_k: int,
                allowed: SearchFilters, with_relevance: bool = False) -> list[StoredHit]:
        conditions = [Filter.by_property("tenant_id").equal(allowed.tenant_id)]
        if allowed.pack_ids is not None:
            packs = [Filter.by_property("pack_id").is_none(True)] if allowed.unpacked else []
            if allowed.pack_ids:
                packs.append(Filter.by_property("pack_id").contains_any(list(allowed.pack_ids)))
            conditions.append(Filter.any_of(packs))
        if allowed.source_apps is not None:
            conditions.append(Filter.by_property("source_app").contains_any(list(allowed.source_apps)))
        if allowed.workspace is not None:
            conditions.append(Filter.by_property("workspace").equal(allowed.workspace))
        where = Filter.all_of(conditions)
        vector = query_vector.tolist()
        terms = " ".join(tokenize(query_text))
        alias = self.alias_name(namespace)
        collection = self.client.collections.use(alias)
        # A version with relevance vectors has two named vectors: search the retrieval one, return both.
        target = DEFAULT_VECTOR if with_relevance else None
        returned: bool | list[str] = [DEFAULT_VECTOR, RELEVANCE_VECTOR] if with_relevance else True
        try:
            response: QueryReturn
            if terms:
                response = self._call(
                    f"hybrid {alias}",
                    collection.query.hybrid,
                    query=terms,
                    query_properties=["search_text"],
                    vector=vector,
                    alpha=self.alpha,
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    filters=where,
                    limit=top_k,
                    return_metadata=MetadataQuery(score=True),
                    return_properties=["payload_json"],
                    target_vector=target,
                    include_vector=returned,
                )
                scores = [o.metadata.score for o in response.objects]
            else:  # nothing for BM25 to match: a plain vector search, scored as a cosine
                response = self._call(
                    f"near_vector {alias}",
                    collection.query.near_vector,
                    near_vector=vector,
                    filters=where,
                    limit=top_k,
                    return_metadata=MetadataQuery(distance=True),
                    return_properties=["payload_json"],
                    target_vector=target,
                    include_vector=returned,
                )
                scores = [1.0 - (o.metadata.distance or 0.0) for o in response.objects]
        except WeaviateBaseError as exc:
            if self._call("alias get", self.client.alias.get, alias_name=alias) is None:
                raise LookupError(f"{namespace} has no published version in Weaviate (no alias {alias})") from exc
            raise
        return [
            StoredHit(json.loads(str(o.properties["payload_json"])), float(score or 0.0), _vector(o.vector),
                      _relevance(o.vector) if with_relevance else None)
            for o, score in zip(response.objects, scores, strict=True)
        ]


def _vector(vectors: Any) -> np.ndarray:
    """The object's vector: v4 returns {"default": [...]} for a collection's single unnamed vector."""
    value = vectors.get("default", next(iter(vectors.values()), None)) if isinstance(vectors, dict) else vectors
    return np.asarray(value if value is not None else (), dtype=np.float32)


def _relevance(vectors: Any) -> np.ndarray | None:
    """The object's relevance vector, None when its version was published without them."""
    value = vectors.get(RELEVANCE_VECTOR) if isinstance(vectors, dict) else None
    return None if value is None else np.asarray(value, dtype=np.float32)


def _properties(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload as Weaviate properties: filter fields, BM25 terms, and the payload itself as JSON."""
    properties = {f: str(payload[f]) for f in FILTER_FIELDS if payload.get(f) is not None}
    properties["search_text"] = " ".join(tokenize(lexical_text(payload)))
    properties["payload_json"] = json.dumps(payload, ensure_ascii=False)
    return properties
