"""Dagster resources: thin, typed wrappers over knowledge_plane/ that the assets receive by name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from knowledge_plane.build.stages import BuildContext
from knowledge_plane.serving.embedding import Embedder
from knowledge_plane.settings import Settings
from knowledge_plane.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore


@lru_cache(maxsize=4)
def _shared_embedder(batch_size: int) -> Embedder:
    # One model per process: a run that touches many namespaces loads it once, and only if needed.
    return Embedder(batch_size=batch_size)


class KnowledgeBase(dg.ConfigurableResource):
    """Where the build plane reads its sources and writes stages, index versions and aliases."""

    data_dir: str = Field(description="Root of everything the embedded defaults write (KNOWLEDGE_DATA_DIR).")
    corpus_dir: str = Field(description="The Git-tracked knowledge/ corpus; each folder is a namespace.")
    project_root: str = Field(description="The project whose Python is the internal:code namespace.")
    tenant_id: str = Field(description="The deployment's tenant (KNOWLEDGE_TENANT_ID).")
    registry_url: str = Field(description="SQLAlchemy URL of the registry of versions and aliases.")
    max_file_bytes: int = Field(description="Files above this size are quarantined.")
    keep_versions: int = Field(description="Index versions kept per namespace (older ones are deleted).")
    cache_dir: str = Field(description="Parse, chunk and embedding caches, keyed by content (KNOWLEDGE_CACHE_DIR).")
    embedding_batch_size: int = Field(default=32, description="Texts per forward pass of the embedding model.")
    progress_bar: bool = Field(default=False, description="Draw a progress bar on the terminal while embedding.")

    def settings(self) -> Settings:
        return Settings.from_env(
            data_dir=Path(self.data_dir),
            knowledge_dir=Path(self.corpus_dir),
            project_root=Path(self.project_root),
            tenant_id=self.tenant_id,
            registry_url=self.registry_url,
            max_file_bytes=self.max_file_bytes,
            keep_versions=self.keep_versions,
            progress_bar=self.progress_bar,
            cache_root=Path(self.cache_dir),
        )

    def build_context(self, run: dg.DagsterRun, objects: KnowledgeObjects | None = None) -> BuildContext:
        return BuildContext(
            self.settings(),
            run_id=run.run_id,
            embedder=_shared_embedder(self.embedding_batch_size),
            object_store=objects.store() if objects else None,
            run_tags=dict(run.tags),
            # a re-execution reads the records of the steps it did not re-run from the run it re-executes
            run_lineage=tuple(dict.fromkeys(r for r in (run.parent_run_id, run.root_run_id) if r)),
        )


class KnowledgeObjects(dg.ConfigurableResource):
    """The bucket uploads arrive in: a local directory by default, MinIO/S3 through dagster-aws."""

    kind: str = Field(description="'local' (a directory with the bucket/key layout) or 's3' (MinIO / S3).")
    bucket: str = Field(description="Bucket holding uploads/{tenant_id}/{pack_id}/… (KNOWLEDGE_BUCKET).")
    local_root: str = Field(default="", description="Root of the local object store ($KNOWLEDGE_DATA_DIR/objects).")
    s3: S3Resource | None = Field(default=None, description="MinIO/S3 client settings when kind is 's3'.")

    def store(self) -> ObjectStore:
        if self.kind == "s3":
            if self.s3 is None:
                raise ValueError("KNOWLEDGE_OBJECT_STORE=s3 needs S3_ENDPOINT_URL (or AWS) settings")
            return S3ObjectStore(self.s3.get_client(), self.bucket)
        return LocalObjectStore(Path(self.local_root), self.bucket)


def knowledge_base_from(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(
        data_dir=str(settings.data_dir),
        corpus_dir=str(settings.knowledge_dir),
        project_root=str(settings.project_root),
        tenant_id=settings.tenant_id,
        registry_url=settings.registry_url,
        max_file_bytes=settings.max_file_bytes,
        keep_versions=settings.keep_versions,
        progress_bar=settings.progress_bar,
        cache_dir=str(settings.cache_dir),
    )


def objects_from(settings: Settings) -> KnowledgeObjects:
    if settings.object_store == "s3":
        # Build-plane credentials only; the query service never receives them.
        s3 = S3Resource(
            endpoint_url=settings.s3_endpoint_url,
            region_name=dg.EnvVar("AWS_REGION"),
            aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
        )
        return KnowledgeObjects(kind="s3", bucket=settings.bucket, s3=s3)
    return KnowledgeObjects(kind="local", bucket=settings.bucket, local_root=str(settings.objects_dir))


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {"knowledge": knowledge_base_from(settings), "objects": objects_from(settings)}


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(Settings.from_env()))
