"""The typed records the build stages hand each other, one pydantic model per stage.

A record is what one run's stage wrote for one namespace; the next stage of the same run reads it
back through ``StageStore`` (``knowledge_plane/build/stage_store.py``). Field names are those of the
JSON dicts the stages exchanged before the records were typed, so a reader writes ``record.chunks``
where it wrote ``record["chunks"]``. The items inside (files, documents, chunks, quarantined files,
check results) stay plain dicts: they are the domain objects' ``to_dict()`` forms, which the parse and
chunk caches and the index payloads already use.

``FORMAT_VERSION`` changes whenever a field changes meaning or is removed; a record of another
format is refused on reading (``RecordFormatError``) rather than read wrongly.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1


class StageRecord(BaseModel):
    """What every record holds: its stage, its namespace and the run that wrote it."""

    model_config = ConfigDict(extra="forbid")

    STAGE: ClassVar[str]
    # The field holding the record's rows when they are stored as an Arrow table beside the JSON
    # (see stage_store.py): only where the rows are many and flat enough for a table to pay.
    TABLE: ClassVar[str | None] = None

    format_version: int = FORMAT_VERSION
    run_id: str | None = None  # set by the StageStore that writes it
    namespace: str


class RawRecord(StageRecord):
    """raw_documents: the namespace's files (``SourceFile.to_dict()``) and what was refused before parsing."""

    STAGE: ClassVar[str] = "raw_documents"
    files: list[dict[str, Any]] = Field(default_factory=list)
    quarantined: list[dict[str, Any]] = Field(default_factory=list)
    ignored: int = 0
    source_commit: str | None = None
    seconds: float = 0.0


class ParsedRecord(StageRecord):
    """parsed_documents: ``ParsedDocument.to_dict()`` plus the Git commit and the upload's origin."""

    STAGE: ClassVar[str] = "parsed_documents"
    documents: list[dict[str, Any]] = Field(default_factory=list)
    quarantined: list[dict[str, Any]] = Field(default_factory=list)
    parsed: int = 0
    from_cache: int = 0
    seconds: float = 0.0
    parsers: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ChunksRecord(StageRecord):
    """document_chunks: every chunk (``Chunk.to_dict()``) of the namespace and the chunker's counts."""

    STAGE: ClassVar[str] = "document_chunks"
    TABLE: ClassVar[str | None] = "chunks"
    chunks: list[dict[str, Any]] = Field(default_factory=list)
    documents: int = 0
    rechunked: int = 0
    units: int = 0
    would_truncate: int = 0
    truncation_rate: float = 0.0
    truncated: int = 0
    duplicates_dropped: int = 0
    headers_truncated: int = 0
    mean_tokens: float = 0.0
    seconds: float = 0.0


class EmbeddingsRecord(StageRecord):
    """chunk_embeddings: how many of the namespace's chunks were encoded now and how many were cached."""

    STAGE: ClassVar[str] = "chunk_embeddings"
    chunks: int = 0
    chunks_embedded: int = 0
    chunks_cached: int = 0
    model: str = ""


class EmbeddingsRun(BaseModel):
    """What the embedding stage returns: the run's totals (one encode for all namespaces) and a record each."""

    summary: dict[str, Any]
    namespaces: dict[str, EmbeddingsRecord]


class FactsRecord(StageRecord):
    """extracted_facts: counts, new facts and conflicts of one namespace's extraction."""

    STAGE: ClassVar[str] = "extracted_facts"
    tenant_id: str
    extractor_version: str
    documents: int = 0
    documents_extracted: int = 0
    documents_unchanged: int = 0
    documents_removed: list[str] = Field(default_factory=list)
    facts_extracted: int = 0
    new_facts: int = 0
    new_fact_list: list[dict[str, Any]] = Field(default_factory=list)
    retracted: int = 0
    revived: int = 0
    ignored_rejected_type: int = 0
    facts_by_status: dict[str, int] = Field(default_factory=dict)
    facts_by_type: dict[str, int] = Field(default_factory=dict)
    extracted_by_method: dict[str, int] = Field(default_factory=dict)
    low_confidence_facts: int = 0
    rules_seconds: float = 0.0
    documents_per_second: float | None = None
    facts_per_second: float | None = None
    new_conflicts: dict[str, int] = Field(default_factory=dict)
    open_conflicts: dict[str, int] = Field(default_factory=dict)
    critical_conflicts: int = 0
    entity_types_pending: list[str] = Field(default_factory=list)
    llm: dict[str, Any] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class IndexVersionRecord(StageRecord):
    """index_versions: the version this run built or reused for the namespace, with its check results."""

    STAGE: ClassVar[str] = "index_versions"
    version: str | None = None
    new: bool = False
    published: dict[str, Any] | None = None
    path: str | None = None
    chunks: int = 0
    documents: int = 0
    checks: list[dict[str, Any]] = Field(default_factory=list)
    checks_passed: bool = True
    evaluation: dict[str, Any] | None = None
    data_docs: str | None = None  # the Data Docs of the data-quality suites: <version dir>/data_docs/index.html
    empty: bool = False  # never published and nothing to publish: no version, not a failure
    seconds: float = 0.0


class AliasRecord(StageRecord):
    """index_aliases: whether the run's version reached @latest, and why (not)."""

    STAGE: ClassVar[str] = "index_aliases"
    version: str | None = None
    promoted: bool = False
    held_back: bool = False
    failed_checks: list[str] = Field(default_factory=list)
    reason: str = ""
    latest: str | None = None
    rollback: str | None = None
    deleted_versions: list[str] = Field(default_factory=list)
    store_alias_repaired: str | None = None


RECORDS: tuple[type[StageRecord], ...] = (
    RawRecord, ParsedRecord, ChunksRecord, EmbeddingsRecord, FactsRecord, IndexVersionRecord, AliasRecord,
)
