"""Dagster resources: thin, typed wrappers over knowledge_plane/ that the assets receive by name.

``build_resources`` fills their explicit fields from the code location's ``Settings`` (built once
by ``defs``). Secrets are never resource fields, so a run's configuration shown in the UI holds
none: they come from the process's settings (``<VAR>`` or ``<VAR>_FILE``) when a run starts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from knowledge_plane.build.stages import BuildContext
from knowledge_plane.serving.embedding import Embedder
from knowledge_plane.settings import Settings
from knowledge_plane.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore, s3_client


@lru_cache(maxsize=4)
def _shared_embedder(batch_size: int, backend: str, cache_dir: str) -> Embedder:
    # One model per process: a run that touches many namespaces loads it once, and only if needed.
    return Embedder(batch_size=batch_size, backend=backend, cache_dir=Path(cache_dir))


class KnowledgeBase(dg.ConfigurableResource):
    """Where the build plane reads its sources and writes stages, index versions and aliases.

    The fields are the settings a run needs, explicit so the UI shows them. Secrets are no fields
    (the registry URL when the process's settings give it, the vector store's key, the Neo4j
    password, the LLM key): a run reads them from its own process's settings, ``<VAR>`` or
    ``<VAR>_FILE``, so no run configuration holds one. (A ``dg.EnvVar`` could not read a file.)
    """

    data_dir: str = Field(description="Root of everything the embedded defaults write (KNOWLEDGE_DATA_DIR).")
    corpus_dir: str = Field(description="The Git-tracked knowledge/ corpus; each folder is a namespace.")
    project_root: str = Field(description="The project whose Python is the internal:code namespace.")
    cache_dir: str = Field(description="Parse, chunk and embedding caches, keyed by content (KNOWLEDGE_CACHE_DIR).")
    tenant_id: str = Field(description="The deployment's tenant (KNOWLEDGE_TENANT_ID).")
    registry_url: str = Field(default="", description="A registry the process's settings would not give (a test's "
                              "database); empty: KNOWLEDGE_REGISTRY_URL or its _FILE, read when the run starts.")
    max_file_bytes: int = Field(description="Files above this size are quarantined (KNOWLEDGE_MAX_FILE_BYTES).")
    max_metadata_bytes: int = Field(description="Larger upload metadata or sidecars are quarantined.")
    max_text_chars: int = Field(description="Documents whose extracted text is longer are quarantined.")
    keep_versions: int = Field(description="Index versions kept per namespace (older ones are deleted).")
    eval_margin: float = Field(description="How far an evaluation figure may fall below @latest's.")
    docling_artifacts_path: str | None = Field(default=None, description="Docling layout models for PDF.")
    embedding_backend: str = Field(default="auto", description="onnx, openvino, torch or auto.")
    embedding_batch_size: int = Field(default=32, description="Texts per forward pass of the embedding model.")
    progress_bar: bool = Field(default=False, description="Draw a progress bar on the terminal while embedding.")
    executor: str = Field(default="local", description="Where chunks are embedded: local or ray (KNOWLEDGE_EXECUTOR).")
    ray_address: str | None = Field(default=None, description="The Ray cluster's head (KNOWLEDGE_RAY_ADDRESS).")
    ray_workers: int = Field(default=2, description="Embedding actors on the Ray cluster (KNOWLEDGE_RAY_WORKERS).")
    relevance_namespaces: str = Field(default="knowledge:*", description="Namespaces whose versions carry the "
                                      "relevance model's vectors (KNOWLEDGE_RELEVANCE_NAMESPACES).")
    vector_backend: str = Field(default="local", description="local, qdrant or weaviate (KNOWLEDGE_VECTOR_BACKEND).")
    qdrant_url: str | None = Field(default=None, description="A Qdrant server (QDRANT_URL).")
    qdrant_path: str | None = Field(default=None, description="qdrant-client local mode (QDRANT_PATH).")
    weaviate_url: str | None = Field(default=None, description="A Weaviate server (WEAVIATE_URL).")
    fact_store: str = Field(default="sql", description="sql or neo4j (KNOWLEDGE_FACT_STORE).")
    neo4j_uri: str | None = Field(default=None, description="NEO4J_URI.")
    neo4j_user: str | None = Field(default=None, description="NEO4J_USER.")
    neo4j_database: str | None = Field(default=None, description="NEO4J_DATABASE.")
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint (OPENAI_BASE_URL).")
    llm_model: str = Field(default="gpt-4o-mini", description="KNOWLEDGE_LLM_MODEL.")
    llm_token_budget: int = Field(default=200_000, description="Tokens one run may spend (KNOWLEDGE_LLM_TOKEN_BUDGET).")

    def settings(self) -> Settings:
        """The run's settings: these fields over the process's settings (which hold the secrets)."""
        values: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "paths": {"data_dir": Path(self.data_dir), "corpus_dir": Path(self.corpus_dir),
                      "project_root": Path(self.project_root), "cache_dir": Path(self.cache_dir)},
            "build": {"max_file_bytes": self.max_file_bytes, "max_metadata_bytes": self.max_metadata_bytes,
                      "max_text_chars": self.max_text_chars, "keep_versions": self.keep_versions,
                      "eval_margin": self.eval_margin, "docling_artifacts_path": self.docling_artifacts_path,
                      "embedding_backend": self.embedding_backend, "progress_bar": self.progress_bar,
                      "executor": self.executor, "ray_address": self.ray_address, "ray_workers": self.ray_workers,
                      "relevance_namespaces": self.relevance_namespaces},
            "vector_store": {"backend": self.vector_backend, "qdrant_url": self.qdrant_url,
                             "qdrant_path": self.qdrant_path, "weaviate_url": self.weaviate_url},
            "facts": {"store": self.fact_store, "neo4j_uri": self.neo4j_uri, "neo4j_user": self.neo4j_user,
                      "neo4j_database": self.neo4j_database},
            "llm": {"base_url": self.llm_base_url, "model": self.llm_model, "token_budget": self.llm_token_budget},
        }
        if self.registry_url:
            values["registry"] = {"url": self.registry_url}
        return Settings(**values)

    def build_context(self, run: dg.DagsterRun, objects: KnowledgeObjects | None = None,
                      instance: dg.DagsterInstance | None = None) -> BuildContext:
        return BuildContext(
            self.settings(),
            run_id=run.run_id,
            embedder=_shared_embedder(self.embedding_batch_size, self.embedding_backend, self.cache_dir),
            object_store=objects.store() if objects else None,
            run_tags=dict(run.tags),
            # a re-execution reads the records of the steps it did not re-run from the runs it re-executes
            run_lineage=_lineage(run, instance),
        )


def _lineage(run: dg.DagsterRun, instance: dg.DagsterInstance | None) -> tuple[str, ...]:
    """The run's parents, nearest first, up to its root: a re-execution of a re-execution reads each
    step's records from the nearest run that wrote them (Dagster loads outputs along the same chain)."""
    chain: list[str] = []
    parent = run.parent_run_id
    while parent and parent not in chain:
        chain.append(parent)
        found = instance.get_run_by_id(parent) if instance is not None else None
        parent = found.parent_run_id if found is not None else None
    if run.root_run_id and run.root_run_id not in chain:
        chain.append(run.root_run_id)
    return tuple(chain)


class KnowledgeObjects(dg.ConfigurableResource):
    """The bucket uploads arrive in: a local directory by default, MinIO/S3 otherwise.

    The S3 secret key is no field: it is the process's AWS_SECRET_ACCESS_KEY (or its _FILE), read
    through the settings when the run opens the store, so it never shows in a run's configuration.
    """

    kind: str = Field(description="'local' (a directory with the bucket/key layout) or 's3' (MinIO / S3).")
    bucket: str = Field(description="Bucket holding uploads/{tenant_id}/{pack_id}/… (KNOWLEDGE_BUCKET).")
    local_root: str = Field(default="", description="Root of the local object store ($KNOWLEDGE_DATA_DIR/objects).")
    endpoint_url: str | None = Field(default=None, description="MinIO/S3 endpoint (S3_ENDPOINT_URL).")
    region: str | None = Field(default=None, description="S3 region (AWS_REGION).")
    access_key_id: str | None = Field(default=None, description="S3 access key id (AWS_ACCESS_KEY_ID).")

    def store(self) -> ObjectStore:
        if self.kind == "s3":
            process = Settings()  # the secret key and the retry policy: never run configuration
            secret = process.object_store.secret_access_key
            client = s3_client(self.endpoint_url, self.region, self.access_key_id,
                               secret.get_secret_value() if secret else None)
            return S3ObjectStore(client, self.bucket, retry=process.retries.policy())
        return LocalObjectStore(Path(self.local_root), self.bucket)


def knowledge_base_from(settings: Settings) -> KnowledgeBase:
    build, vectors, facts, llm = settings.build, settings.vector_store, settings.facts, settings.llm
    url = settings.registry.url.get_secret_value()
    # A run resolves the registry from its process's settings, so the URL (it may hold a password)
    # stays out of the run configuration; only a registry those would not give travels as a field.
    own = Settings(paths={"data_dir": settings.paths.data_dir}).registry.url.get_secret_value()
    return KnowledgeBase(
        data_dir=str(settings.paths.data_dir),
        corpus_dir=str(settings.paths.corpus_dir),
        project_root=str(settings.paths.project_root),
        cache_dir=str(settings.paths.cache_dir),
        tenant_id=settings.tenant_id,
        registry_url="" if url == own else url,
        max_file_bytes=build.max_file_bytes,
        max_metadata_bytes=build.max_metadata_bytes,
        max_text_chars=build.max_text_chars,
        keep_versions=build.keep_versions,
        eval_margin=build.eval_margin,
        docling_artifacts_path=build.docling_artifacts_path,
        embedding_backend=build.embedding_backend,
        progress_bar=bool(build.progress_bar),
        executor=build.executor,
        ray_address=build.ray_address,
        ray_workers=build.ray_workers,
        relevance_namespaces=build.relevance_namespaces,
        vector_backend=vectors.backend,
        qdrant_url=vectors.qdrant_url,
        qdrant_path=vectors.qdrant_path,
        weaviate_url=vectors.weaviate_url,
        fact_store=facts.store,
        neo4j_uri=facts.neo4j_uri,
        neo4j_user=facts.neo4j_user,
        neo4j_database=facts.neo4j_database,
        llm_base_url=llm.base_url,
        llm_model=llm.model,
        llm_token_budget=llm.token_budget,
    )


def objects_from(settings: Settings) -> KnowledgeObjects:
    section = settings.object_store
    if section.kind == "s3":  # build-plane credentials only; the query service never receives them
        return KnowledgeObjects(kind="s3", bucket=section.bucket, endpoint_url=section.endpoint_url,
                                region=section.region, access_key_id=section.access_key_id)
    return KnowledgeObjects(kind="local", bucket=section.bucket, local_root=str(settings.paths.objects_dir))


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {"knowledge": knowledge_base_from(settings), "objects": objects_from(settings)}


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(Settings()))
