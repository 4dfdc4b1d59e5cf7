"""Dagster resources: thin, typed wrappers over knowledge_plane/ that the assets receive by name.

``build_resources`` fills their explicit fields from the code location's ``Settings`` (built once
by ``defs``). Secrets are never resource fields, so a run's configuration shown in the UI holds
none: they come from the process's settings (``<VAR>`` or ``<VAR>_FILE``) when a run starts.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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

    The fields override the matching settings; everything else (registry URL, vector store, fact
    store, LLM) comes from the process's settings, secrets included, when the run starts.
    """

    data_dir: str = Field(description="Root of everything the embedded defaults write (KNOWLEDGE_DATA_DIR).")
    corpus_dir: str = Field(description="The Git-tracked knowledge/ corpus; each folder is a namespace.")
    tenant_id: str = Field(description="The deployment's tenant (KNOWLEDGE_TENANT_ID).")
    registry_url: str = Field(default="", description="SQLAlchemy URL of the registry, when it holds no "
                              "password; empty: KNOWLEDGE_REGISTRY_URL(_FILE) of the process.")
    max_file_bytes: int = Field(description="Files above this size are quarantined.")
    keep_versions: int = Field(description="Index versions kept per namespace (older ones are deleted).")
    cache_dir: str = Field(description="Parse, chunk and embedding caches, keyed by content (KNOWLEDGE_CACHE_DIR).")
    embedding_backend: str = Field(default="auto", description="onnx, openvino, torch or auto.")
    embedding_batch_size: int = Field(default=32, description="Texts per forward pass of the embedding model.")
    progress_bar: bool = Field(default=False, description="Draw a progress bar on the terminal while embedding.")

    def settings(self) -> Settings:
        overrides: dict = {
            "tenant_id": self.tenant_id,
            "paths": {"data_dir": Path(self.data_dir), "corpus_dir": Path(self.corpus_dir),
                      "cache_dir": Path(self.cache_dir)},
            "build": {"max_file_bytes": self.max_file_bytes, "keep_versions": self.keep_versions,
                      "progress_bar": self.progress_bar, "embedding_backend": self.embedding_backend},
        }
        if self.registry_url:
            overrides["registry"] = {"url": self.registry_url}
        return Settings(**overrides)

    def build_context(self, run: dg.DagsterRun, objects: KnowledgeObjects | None = None) -> BuildContext:
        return BuildContext(
            self.settings(),
            run_id=run.run_id,
            embedder=_shared_embedder(self.embedding_batch_size, self.embedding_backend, self.cache_dir),
            object_store=objects.store() if objects else None,
            run_tags=dict(run.tags),
        )


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
            secret = Settings().object_store.secret_access_key
            client = s3_client(self.endpoint_url, self.region, self.access_key_id,
                               secret.get_secret_value() if secret else None)
            return S3ObjectStore(client, self.bucket)
        return LocalObjectStore(Path(self.local_root), self.bucket)


def knowledge_base_from(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(
        data_dir=str(settings.paths.data_dir),
        corpus_dir=str(settings.paths.corpus_dir),
        tenant_id=settings.tenant_id,
        max_file_bytes=settings.build.max_file_bytes,
        keep_versions=settings.build.keep_versions,
        progress_bar=bool(settings.build.progress_bar),
        embedding_backend=settings.build.embedding_backend,
        cache_dir=str(settings.paths.cache_dir),
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
