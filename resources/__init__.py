"""Dagster resources: thin, typed wrappers over core/ that the assets receive by name."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dagster as dg
from pydantic import Field

from core.build import BuildContext
from core.embedding import Embedder
from core.settings import Settings


@lru_cache(maxsize=4)
def _shared_embedder(batch_size: int) -> Embedder:
    # One model per process: a run that touches many namespaces loads it once, and only if needed.
    return Embedder(batch_size=batch_size)


class KnowledgeBase(dg.ConfigurableResource):
    """Where the build plane reads its sources and writes stages, index versions and aliases."""

    data_dir: str = Field(description="Root of everything the embedded defaults write (KNOWLEDGE_DATA_DIR).")
    corpus_dir: str = Field(description="The Git-tracked knowledge/ corpus; each folder is a namespace.")
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
            tenant_id=self.tenant_id,
            registry_url=self.registry_url,
            max_file_bytes=self.max_file_bytes,
            keep_versions=self.keep_versions,
            progress_bar=self.progress_bar,
            cache_root=Path(self.cache_dir),
        )

    def build_context(self, run_id: str) -> BuildContext:
        return BuildContext(self.settings(), run_id=run_id, embedder=_shared_embedder(self.embedding_batch_size))


def knowledge_base_from(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(
        data_dir=str(settings.data_dir),
        corpus_dir=str(settings.knowledge_dir),
        tenant_id=settings.tenant_id,
        registry_url=settings.registry_url,
        max_file_bytes=settings.max_file_bytes,
        keep_versions=settings.keep_versions,
        progress_bar=settings.progress_bar,
        cache_dir=str(settings.cache_dir),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"knowledge": knowledge_base_from(Settings.from_env())})
