"""The build plane's stages as plain functions: raw → parsed → chunks → embeddings → version → alias.

Each stage is a function of typed records (``records.py``) to a typed record — ``list_documents``,
``parse_documents``, ``chunk_documents``, ``embed_chunks``, ``build_version``, ``move_aliases`` — and
its stage wrapper (``raw_documents`` … ``index_aliases``, what the assets call) reads the inputs from the
run's ``StageStore`` (``$KNOWLEDGE_DATA_DIR/stages/<tenant>/<run id>``) and writes the output there: two
runs never read or overwrite each other's records, so two builds may run at once, even on one
namespace. Work is skipped by content hash at every stage: an unchanged file is not re-parsed, an
unchanged document not re-chunked, an unchanged chunk text never re-embedded, and unchanged content
never becomes a new version.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_plane.build.checks import PayloadScanCache, conflicts_check, run_checks
from knowledge_plane.build.chunking import CHUNKER_VERSION, ChunkStats, chunk_document
from knowledge_plane.build.data_quality import DATA_DOCS_DIR, cached, data_quality_check, keep
from knowledge_plane.build.evaluation import evaluation_check
from knowledge_plane.build.parsing import PARSER_VERSION, parse_document
from knowledge_plane.build.records import (
    AliasRecord,
    ChunksRecord,
    EmbeddingsRecord,
    EmbeddingsRun,
    IndexVersionRecord,
    ParsedRecord,
    RawRecord,
)
from knowledge_plane.build.secrets import Allowlist, scanner_identity
from knowledge_plane.build.sources import (
    CODE_NAMESPACE,
    SIDECAR_SUFFIX,
    SourceFile,
    discover_namespaces,
    head_commit,
    read_corpus_file,
    scan_namespace,
)
from knowledge_plane.build.stage_store import StageMissing, StageStore
from knowledge_plane.build.triggers import COMMIT_TAG
from knowledge_plane.build.uploads import UploadRules, check_metadata_size, scan_uploads, upload_truth_level
from knowledge_plane.domain.documents import ParsedDocument
from knowledge_plane.domain.ids import namespace_slug, sha256_hex
from knowledge_plane.domain.quarantine import (
    DELETED_DURING_RUN,
    DUPLICATE_DOC_ID,
    PROMPT_INJECTION,
    TEXT_TOO_LARGE,
    QuarantinedFile,
    QuarantineError,
    check_file_name,
    printable,
)
from knowledge_plane.facts.gate import critical_conflicts
from knowledge_plane.facts.publish import approved_facts_snapshot
from knowledge_plane.facts.store import open_fact_store
from knowledge_plane.serving.embedding import DIMENSION, MODEL_NAME, Embedder, EmbeddingCache
from knowledge_plane.serving.guards import DOCUMENT_INJECTION_PATTERNS, injection_quarantine_detail
from knowledge_plane.serving.relevance import RELEVANCE_MODEL, RelevanceModel
from knowledge_plane.serving.retrieval import write_search_index
from knowledge_plane.settings import Settings
from knowledge_plane.storage.index_store import (
    delete_version,
    fingerprint,
    new_version_id,
    read_facts,
    read_manifest,
    read_version,
    version_dir,
    write_version,
)
from knowledge_plane.storage.object_store import ObjectMissing, ObjectStore
from knowledge_plane.storage.packs import Packs
from knowledge_plane.storage.processes import clean_stale_temporaries, tmp_path
from knowledge_plane.storage.registry import (
    BUILD_PROMOTE,
    LATEST,
    OPERATOR_ACTIONS,
    OPERATOR_PROMOTE,
    ROLLBACK,
    AliasMoved,
    Registry,
    active_caller_apps,
)
from knowledge_plane.storage.vector_backends import open_vector_backend

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class BuildContext:
    """What every stage needs; cheap to create, heavy parts (the model) load on first use."""

    settings: Settings
    run_id: str = "adhoc"
    embedder: Embedder = field(default_factory=Embedder)
    object_store: ObjectStore | None = None
    run_tags: dict[str, str] = field(default_factory=dict)
    run_lineage: tuple[str, ...] = ()  # the runs this one re-executes (Dagster parent, then root run)
    relevance: RelevanceModel = field(default_factory=RelevanceModel.shared)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings.registry.url.get_secret_value(), self.settings.tenant_id)

    @cached_property
    def packs(self) -> Packs:
        return Packs(self.registry.engine, self.settings.tenant_id)

    @cached_property
    def upload_rules(self) -> UploadRules:
        """What uploads may be and where they may publish: settings, namespaces and the packs' grants."""
        return UploadRules(
            tenant_id=self.settings.tenant_id,
            max_bytes=self.settings.build.max_file_bytes,
            max_metadata_bytes=self.settings.build.max_metadata_bytes,
            known_namespaces=frozenset(discover_namespaces(self.settings)),
            disabled_packs=frozenset(self.packs.disabled()),
            grants=self.packs.grants(),
            caller_apps=frozenset(a.name for a in active_caller_apps(self.registry))
            if self.settings.service.enforce_caller_app_registry else None,
        )

    @cached_property
    def uploads(self) -> tuple[list[SourceFile], list[tuple[str, QuarantinedFile]]]:
        """Every upload of the tenant as a source file, listed once per stage and context."""
        if self.object_store is None:
            return [], []
        found, refused = scan_uploads(self.object_store, self.upload_rules)
        self.packs.ensure({u.metadata["pack_id"] for u in found})
        files = [
            SourceFile(
                u.namespace,
                u.key,
                "",
                u.size,
                u.content_hash,
                None,
                "upload",
                {**u.metadata, "uri": self.object_store.uri(u.key)},
            )
            for u in found
        ]
        return files, refused

    @cached_property
    def allowlist(self) -> Allowlist:
        """The reviewed findings committed beside the corpus (read once per context)."""
        return Allowlist.load(self.settings.paths.corpus_dir)

    @cached_property
    def embedding_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.settings.paths.cache_dir / "embeddings.sqlite")

    @cached_property
    def stages(self) -> StageStore:
        """This run's stage records (another run's are never read by a stage, but for the runs it
        re-executes)."""
        return StageStore(self.settings.paths.stages_dir, self.settings.tenant_id, self.run_id, self.run_lineage)

    def _cache_file(self, kind: str, key: str) -> Path:
        return self.settings.paths.cache_dir / kind / key[:2] / f"{key}.json"

    def cache_get(self, kind: str, key: str) -> Any | None:
        path = self._cache_file(kind, key)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def cache_put(self, kind: str, key: str, value: Any) -> None:
        path = self._cache_file(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(path)
        tmp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)


@contextmanager
def vector_backend(ctx: BuildContext):
    """The configured vector store (None for the local default), opened for one stage and closed after:
    Qdrant's local mode locks its directory, so no client may outlive the stage that needed it."""
    backend = open_vector_backend(ctx.settings, read_only=False)
    try:
        yield backend
    finally:
        if backend is not None:
            backend.close()


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def clean_temporaries(settings: Settings) -> list[str]:
    """Remove what killed builds left half-written (index versions, stage records, cache entries,
    local objects): run at the start of every build."""
    paths = settings.paths
    roots = [paths.indexes_dir, paths.stages_dir, paths.cache_dir, paths.objects_dir]
    return [str(p) for p in clean_stale_temporaries(roots)]


# -- raw_documents --------------------------------------------------------------------------
def raw_documents(ctx: BuildContext, namespace: str) -> RawRecord:
    """The stage: the run's first, so it also prunes old runs' records of the namespace."""
    ctx.stages.prune(namespace)
    return ctx.stages.write(list_documents(ctx, namespace))


def list_documents(ctx: BuildContext, namespace: str) -> RawRecord:
    """The namespace's files and uploads, with what is refused before anything reads them."""
    started = time.perf_counter()
    files, quarantined, ignored = scan_namespace(ctx.settings, namespace)
    quarantined = [replace(q, path=printable(q.path)) for q in quarantined]
    safe: list[SourceFile] = []
    for source in files:  # refused, not escaped: the path is the document's identity and its citation
        try:
            check_file_name(source.source_path)
            safe.append(source)
        except QuarantineError as exc:
            quarantined.append(QuarantinedFile(printable(source.source_path), exc.reason, exc.detail, "raw"))
    uploads, refused = ctx.uploads
    files = safe + [f for f in uploads if f.namespace == namespace]
    quarantined += [q for ns, q in refused if ns == namespace]
    return RawRecord(
        namespace=namespace,
        files=[f.to_dict() for f in files],
        quarantined=[q.to_dict() for q in quarantined],
        ignored=ignored,
        source_commit=head_commit(
            ctx.settings.paths.corpus_dir if namespace.startswith("knowledge:") else ctx.settings.paths.project_root
        ),
        seconds=round(time.perf_counter() - started, 3),
    )


# -- parsed_documents -----------------------------------------------------------------------
def _parse_one(ctx: BuildContext, source: SourceFile) -> tuple[dict[str, Any] | None, dict[str, str] | None, bool]:
    """(parsed document, quarantine, came_from_cache) for one file; failures are cached too."""
    # The reviewed findings of this file are part of the key: allowing one re-parses only this file; the
    # secret scanner's identity too, so a new detection rule screens every document again.
    allowed = ",".join(sorted(ctx.allowlist.for_path(source.source_path)))
    key = sha256_hex(
        f"{PARSER_VERSION}|{_INJECTION_SCAN}|{scanner_identity()}|{source.namespace}|{source.source_path}|{source.content_hash}|{allowed}"
    )
    limit = ctx.settings.build.max_text_chars
    sidecar_path = None
    if source.origin != "upload":
        path = Path(source.abs_path)
        sidecar_path = path.with_name(path.name + SIDECAR_SUFFIX)
        try:  # judged on its size before the cache: the limit is a setting, not part of the content
            check_metadata_size(sidecar_path.lstat().st_size, ctx.settings.build.max_metadata_bytes)
        except FileNotFoundError:
            sidecar_path = None
        except QuarantineError as exc:
            return None, {"reason": exc.reason, "detail": exc.detail}, False
    cached = ctx.cache_get("parsed", key)
    if cached is not None:
        doc, problem = cached.get("document"), cached.get("quarantine")
        chars = _text_chars(s["text"] for s in doc["sections"]) if doc is not None else 0
        if chars > limit:  # the limit was lowered since
            return None, _text_too_large(chars, limit), True
        if not (problem and problem["reason"] == TEXT_TOO_LARGE and problem["chars"] <= limit):
            return doc, problem, True
        # else: quarantined under a lower limit than today's: parse again
    try:
        if source.origin == "upload":
            if ctx.object_store is None:
                raise ObjectMissing(source.source_path)
            data, sidecar = ctx.object_store.get(source.source_path), None
        else:
            data = read_corpus_file(Path(source.abs_path))
            sidecar = read_corpus_file(sidecar_path) if sidecar_path is not None else None
        doc = parse_document(
            data,
            namespace=source.namespace,
            source_path=source.source_path,
            content_hash=source.content_hash,
            sidecar=sidecar,
            upload_meta=source.metadata,
            docling_artifacts_path=ctx.settings.build.docling_artifacts_path,
            allowlist=ctx.allowlist,
        )
        if source.origin == "upload":
            doc.truth_level = upload_truth_level(source.metadata or {}, doc.meta)
        chars = _text_chars(s.text for s in doc.sections)
        injected = _injected_instructions(source.namespace, doc) if chars <= limit else None
        if chars > limit:  # cached without its text: a 108 KB DOCX gave 20 MB of it
            entry: dict[str, Any] = {"quarantine": _text_too_large(chars, limit)}
        elif injected:
            entry = {"quarantine": {"reason": PROMPT_INJECTION, "detail": injected}}
        else:
            origin = {"origin": source.origin, **(source.metadata or {})}
            entry = {"document": {**doc.to_dict(), "commit": source.commit, "source": origin}}
    except QuarantineError as exc:
        entry = {"quarantine": {"reason": exc.reason, "detail": exc.detail}}
    except (FileNotFoundError, ObjectMissing):
        # Listed by raw_documents, gone now: say so, and do not cache it (it may come back).
        return None, {"reason": DELETED_DURING_RUN, "detail": "deleted after it was listed"}, False
    ctx.cache_put("parsed", key, entry)
    return entry.get("document"), entry.get("quarantine"), False


def _text_chars(texts: Iterable[str]) -> int:
    return sum(map(len, texts))


def _text_too_large(chars: int, limit: int) -> dict[str, Any]:
    detail = f"{chars} characters of text extracted, above the limit of {limit} (KNOWLEDGE_MAX_TEXT_CHARS)"
    return {"reason": TEXT_TOO_LARGE, "detail": detail, "chars": chars}


# The injection scan's verdict is cached with the parse (an unchanged document is not scanned again
# on every build); a change to the document patterns changes this and so the parse cache key.
_INJECTION_SCAN = sha256_hex("|".join(p.pattern for _, p in DOCUMENT_INJECTION_PATTERNS))[:12]


def _injected_instructions(namespace: str, doc: ParsedDocument) -> str | None:
    """Why a document that addresses the model is quarantined rather than flagged: its passages
    go verbatim into the callers' prompts, so a flag every consumer must honour protects nobody
    who forgets it. The code namespace is exempt: it is the project's reviewed source, where the
    guards' own patterns and test vectors are content, and only internal agents read it."""
    if namespace == CODE_NAMESPACE:
        return None
    return injection_quarantine_detail("\n\n".join([doc.title, *(s.text for s in doc.sections)]))


def parsed_documents(ctx: BuildContext, namespace: str, log: Log = _quiet) -> ParsedRecord:
    """The stage: this run's raw_documents record in, its parsed_documents record out."""
    return ctx.stages.write(parse_documents(ctx, ctx.stages.read(RawRecord, namespace), log))


def parse_documents(ctx: BuildContext, raw: RawRecord, log: Log = _quiet) -> ParsedRecord:
    """Parse (or take from the parse cache) every listed file; quarantine what cannot be used."""
    started = time.perf_counter()
    namespace = raw.namespace
    documents: list[dict[str, Any]] = []
    quarantined = list(raw.quarantined)
    seen_ids: dict[str, str] = {}
    parsed = cached = 0
    for item in raw.files:
        source = SourceFile(**item)
        doc, problem, from_cache = _parse_one(ctx, source)
        cached += from_cache
        parsed += not from_cache
        if problem:
            quarantined.append(
                QuarantinedFile(source.source_path, problem["reason"], problem["detail"], "parse").to_dict()
            )
            log(f"quarantined {source.source_path}: {problem['reason']}: {problem['detail']}")
        elif doc:
            if doc["doc_id"] in seen_ids:
                detail = f"id '{doc['doc_id']}' is already used by {seen_ids[doc['doc_id']]}"
                quarantined.append(QuarantinedFile(source.source_path, DUPLICATE_DOC_ID, detail, "parse").to_dict())
                continue
            seen_ids[doc["doc_id"]] = source.source_path
            documents.append(doc)
    return ParsedRecord(
        namespace=namespace,
        documents=documents,
        quarantined=quarantined,
        parsed=parsed,
        from_cache=cached,
        seconds=round(time.perf_counter() - started, 3),
        parsers=sorted({d["parser"] for d in documents}),
        notes=sorted({f"{d['source_path']}: {d['parser_note']}" for d in documents if d.get("parser_note")}),
    )


# -- document_chunks ------------------------------------------------------------------------
def document_chunks(ctx: BuildContext, namespace: str) -> ChunksRecord:
    """The stage: this run's parsed_documents record in, its document_chunks record out."""
    return ctx.stages.write(chunk_documents(ctx, ctx.stages.read(ParsedRecord, namespace)))


def chunk_documents(ctx: BuildContext, parsed: ParsedRecord) -> ChunksRecord:
    """Chunk (or take from the chunk cache) every parsed document of a namespace."""
    started = time.perf_counter()
    chunks: list[dict[str, Any]] = []
    totals = ChunkStats()
    rechunked = 0
    for doc_dict in parsed.documents:
        key = sha256_hex(CHUNKER_VERSION + json.dumps(doc_dict, sort_keys=True, ensure_ascii=False))
        entry = ctx.cache_get("chunks", key)
        if entry is None:
            doc_chunks, stats = chunk_document(
                ParsedDocument.from_dict({k: v for k, v in doc_dict.items() if k not in ("commit", "source")})
            )
            entry = {"chunks": [c.to_dict() for c in doc_chunks], "stats": stats.__dict__}
            ctx.cache_put("chunks", key, entry)
            rechunked += 1
        chunks.extend(entry["chunks"])
        for name, value in entry["stats"].items():
            setattr(totals, name, getattr(totals, name) + value)
    tokens = [c["n_tokens"] for c in chunks]
    return ChunksRecord(
        namespace=parsed.namespace,
        chunks=chunks,
        documents=len(parsed.documents),
        rechunked=rechunked,
        units=totals.units,
        would_truncate=totals.would_truncate,
        truncation_rate=round(totals.would_truncate / totals.units, 4) if totals.units else 0.0,
        truncated=sum(1 for t in tokens if t > 256),
        duplicates_dropped=totals.duplicates_dropped,
        headers_truncated=totals.headers_truncated,
        mean_tokens=round(sum(tokens) / len(tokens), 1) if tokens else 0.0,
        seconds=round(time.perf_counter() - started, 3),
    )


# -- chunk_embeddings -----------------------------------------------------------------------
# What the embedding stage reads of each chunk: not the payload, which can be most of the record.
_EMBED_COLUMNS = ["text_hash", "embed_text", "n_tokens"]


def embedding_input(ctx: BuildContext, namespace: str) -> list[dict[str, Any]]:
    """This run's chunks of one namespace, only the columns the embedding stage needs."""
    return ctx.stages.rows(ChunksRecord, namespace, _EMBED_COLUMNS)


def chunk_embeddings(ctx: BuildContext, namespaces: list[str] | dict[str, list[dict[str, Any]]],
                     log: Log = _quiet) -> EmbeddingsRun:
    """The stage: this run's chunks of every namespace in (the namespaces, or their ``embedding_input``
    already read), one batched encode, a chunk_embeddings record per namespace out."""
    chunks = namespaces if isinstance(namespaces, dict) else {ns: embedding_input(ctx, ns) for ns in namespaces}
    run = embed_chunks(ctx, chunks, log)
    return run.model_copy(update={"namespaces": {ns: ctx.stages.write(r) for ns, r in run.namespaces.items()}})


def embed_chunks(ctx: BuildContext, chunks_by_namespace: dict[str, list[dict[str, Any]]],
                 log: Log = _quiet) -> EmbeddingsRun:
    """One batched encode over every chunk of every namespace in the run that is not cached."""
    started = time.perf_counter()
    per_ns_hashes: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    tokens: dict[str, int] = {}
    for namespace, chunks in chunks_by_namespace.items():
        per_ns_hashes[namespace] = [c["text_hash"] for c in chunks]
        for c in chunks:
            texts.setdefault(c["text_hash"], c["embed_text"])
            tokens.setdefault(c["text_hash"], c["n_tokens"])
    cached = ctx.embedding_cache.get_many(MODEL_NAME, texts)
    missing = [h for h in texts if h not in cached]
    log(f"{len(texts)} distinct chunk texts, {len(cached)} cached, {len(missing)} to embed")
    executor = ctx.settings.build.executor
    if missing and executor == "local":
        ctx.embedder.load()  # before timing, so the rate is the encoder's
    bar = _progress_bar(len(missing)) if missing and ctx.settings.build.progress_bar else None
    encode_started = time.perf_counter()
    done = 0
    # Each slice is stored as soon as it is encoded: a run killed here re-embeds at most one slice.
    for hashes, vectors in _encoded(ctx, missing, texts):
        ctx.embedding_cache.put_many(MODEL_NAME, dict(zip(hashes, vectors, strict=True)))
        done += len(hashes)
        log(f"embedded {done}/{len(missing)} chunks ({_rate(done, time.perf_counter() - encode_started)} chunks/s)")
        if bar is not None:
            bar.update(len(hashes))
    if bar is not None:
        bar.close()
    encode_seconds = time.perf_counter() - encode_started
    relevance = _embed_relevance(ctx, per_ns_hashes, texts, log)
    missing_set = set(missing)
    attributed: set[str] = set()
    results = {}
    for namespace, hashes in per_ns_hashes.items():
        new = {h for h in hashes if h in missing_set and h not in attributed}
        attributed |= new
        results[namespace] = EmbeddingsRecord(
            namespace=namespace,
            chunks=len(hashes),
            chunks_embedded=len(new),
            chunks_cached=len(set(hashes) - new),
            model=MODEL_NAME,
        )
    embedded_tokens = sum(tokens[h] for h in missing)
    summary = {
        "chunks_embedded": len(missing),
        "chunks_cached": len(cached),
        "encode_seconds": round(encode_seconds, 3),
        "chunks_per_second": _rate(len(missing), encode_seconds),
        "tokens_embedded": embedded_tokens,
        "tokens_per_second": _rate(embedded_tokens, encode_seconds),
        "seconds": round(time.perf_counter() - started, 3),
        "model": MODEL_NAME,
        "executor": executor,
        **relevance,
    }
    return EmbeddingsRun(summary=summary, namespaces=results)


def _embed_relevance(ctx: BuildContext, per_ns_hashes: dict[str, list[str]], texts: dict[str, str],
                     log: Log) -> dict[str, Any]:
    """The relevance model's vectors of the chunks of the namespaces that carry them
    (KNOWLEDGE_RELEVANCE_NAMESPACES), the uncached ones embedded and stored slice by slice."""
    wanted = list(dict.fromkeys(h for ns, hashes in per_ns_hashes.items()
                                if ctx.settings.build.wants_relevance(ns) for h in hashes))
    if not wanted:
        return {"relevance_embedded": 0}
    cached = ctx.embedding_cache.get_many(RELEVANCE_MODEL, wanted)
    missing = [h for h in wanted if h not in cached]
    started = time.perf_counter()
    for positions, vectors in ctx.relevance.passage_batches([texts[h] for h in missing]):
        ctx.embedding_cache.put_many(RELEVANCE_MODEL, {missing[i]: v for i, v in zip(positions, vectors, strict=True)})
        log(f"relevance vectors: {positions.stop}/{len(missing)} chunks")
    seconds = time.perf_counter() - started
    return {"relevance_model": RELEVANCE_MODEL, "relevance_embedded": len(missing),
            "relevance_cached": len(cached), "relevance_seconds": round(seconds, 3)}


def _encoded(ctx: BuildContext, missing: list[str], texts: dict[str, str]) -> Iterator[tuple[list[str], np.ndarray]]:
    """(text hashes, vectors) of the ``missing`` texts, slice by slice, from the configured executor."""
    if not missing:
        return
    build = ctx.settings.build
    if build.executor == "ray":
        # Imported here: Ray is the optional `ray` extra, and only this executor needs it.
        from knowledge_plane.build.distributed import embed_on_ray, misses_table

        yield from embed_on_ray(misses_table(missing, texts), address=build.ray_address, workers=build.ray_workers,
                                backend=ctx.embedder.backend, cache_dir=ctx.settings.paths.cache_dir,
                                batch_size=ctx.embedder.batch_size)
        return
    for ids, vectors in ctx.embedder.encode_batches([texts[h] for h in missing]):
        yield [missing[i] for i in ids], vectors


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr, dynamic_ncols=True)


# -- index_versions -------------------------------------------------------------------------
def _payload(chunk: dict[str, Any], tenant_id: str, source: dict[str, Any]) -> dict[str, Any]:
    """One chunk's payload. Pack and applications come from where the document came from (the
    upload key and its metadata), never from what the document says about itself."""
    return {
        "chunk_id": chunk["chunk_id"],
        "doc_id": chunk["doc_id"],
        "doc_version": chunk["doc_version"],
        "title": chunk["title"],
        "namespace": chunk["namespace"],
        "source_path": chunk["source_path"],
        "heading_path": chunk["heading_path"],
        "location": chunk["location"],
        "text": chunk["text"],
        "truth_level": chunk["truth_level"],
        "tenant_id": tenant_id,
        "pack_id": source.get("pack_id"),
        "source_app": source.get("source_app") or source.get("origin", "git"),
        "caller_app": source.get("caller_app"),
        "lang": chunk["lang"],
        "updated": chunk["updated"],
        "kind": chunk["kind"],
        # Only when the upload names one: the payloads (and fingerprints) of everything else stay as they were.
        **({"workspace": source["workspace"]} if source.get("workspace") else {}),
    }


# What a version needs of each chunk: its payload fields and the key of its vector, not embed_text.
_VERSION_COLUMNS = [
    "chunk_id", "doc_id", "doc_version", "title", "namespace", "source_path", "heading_path", "location", "text",
    "truth_level", "lang", "updated", "kind", "text_hash", "n_tokens",
]


def index_versions(ctx: BuildContext, namespace: str, log: Log = _quiet) -> IndexVersionRecord:
    """The stage: this run's raw, parsed and chunk records in (the chunks without embed_text), its
    index_versions record out."""
    chunks = ctx.stages.rows(ChunksRecord, namespace, _VERSION_COLUMNS)
    record = build_version(ctx, ctx.stages.read(RawRecord, namespace), ctx.stages.read(ParsedRecord, namespace),
                           chunks, log)
    return ctx.stages.write(record)


def build_version(ctx: BuildContext, raw: RawRecord, parsed: ParsedRecord, chunks: list[dict[str, Any]],
                  log: Log = _quiet) -> IndexVersionRecord:
    """Assemble, check and write an immutable version; reuse an existing one with the same content."""
    started = time.perf_counter()
    settings = ctx.settings
    namespace = parsed.namespace
    sources = {d["doc_id"]: d.get("source", {}) for d in parsed.documents}
    vectors_by_hash = ctx.embedding_cache.get_many(MODEL_NAME, [c["text_hash"] for c in chunks])
    absent = [c["chunk_id"] for c in chunks if c["text_hash"] not in vectors_by_hash]
    if absent:
        raise StageMissing(f"{len(absent)} chunks of {namespace} have no embedding: materialize chunk_embeddings")
    if not chunks and LATEST not in ctx.registry.aliases(namespace).get(namespace, {}):
        # Never published and nothing to publish (e.g. no uploads yet): not a failure, no version.
        return IndexVersionRecord(
            namespace=namespace, documents=len(parsed.documents), empty=True,
            seconds=round(time.perf_counter() - started, 3),
        )
    chunks = sorted(chunks, key=lambda c: (c["doc_id"], c["chunk_id"]))
    payloads = [_payload(c, settings.tenant_id, sources.get(c["doc_id"], {})) for c in chunks]
    vectors = (
        np.stack([vectors_by_hash[c["text_hash"]] for c in chunks]).astype(np.float32)
        if chunks
        else np.zeros((0, DIMENSION), dtype=np.float32)
    )
    relevance = _relevance_vectors(ctx, namespace, chunks)
    with open_fact_store(settings) as facts_store:
        facts = approved_facts_snapshot(facts_store, settings.tenant_id, namespace)
        critical = critical_conflicts(facts_store, settings.tenant_id, namespace)
    allowed = {d["doc_id"]: set(d.get("allowed_findings", [])) for d in parsed.documents}
    evaluation = evaluation_check(ctx, namespace, vectors, payloads, relevance)  # the candidate must still answer
    # Versions with and without relevance vectors serve differently: they are different content.
    models = MODEL_NAME if relevance is None else f"{MODEL_NAME} + {RELEVANCE_MODEL}"
    fp = fingerprint(models, DIMENSION, payloads, [c["text_hash"] for c in chunks], facts)
    same_content = [v for v in ctx.registry.versions(namespace) if v.fingerprint == fp]
    # Content these suites already checked (this namespace's or another's, any version): that result holds.
    cache_dir = settings.paths.cache_dir
    quality = cached(cache_dir, fp) or keep(cache_dir, fp, data_quality_check(chunks, facts))
    scans = PayloadScanCache(
        settings.paths.cache_dir / "secret_scans" / settings.tenant_id / f"{namespace_slug(namespace)}.json"
    )
    checks = [
        *run_checks(namespace, vectors, payloads, DIMENSION, allowed, scans),
        conflicts_check(critical),
        evaluation.check,
        quality.check,
    ]
    scans.save()
    checks_passed = all(c.passed for c in checks)
    existing = next(iter(same_content), None)
    if existing is not None and existing.checks_passed == checks_passed:
        version, path, new = existing.version, Path(existing.path), False
        log(f"{namespace}: content unchanged, already built as {version}")
    else:
        version, new = new_version_id(fp), True
        path = version_dir(settings.paths.indexes_dir, settings.tenant_id, namespace, version)
        manifest = {
            "namespace": namespace,
            "version": version,
            "name": f"{namespace}@{version}",
            "tenant_id": settings.tenant_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "model": MODEL_NAME,
            "dimension": DIMENSION,
            "relevance_model": None if relevance is None else RELEVANCE_MODEL,
            "chunker_version": CHUNKER_VERSION,
            "parser_version": PARSER_VERSION,
            "source_commit": ctx.run_tags.get(COMMIT_TAG) or raw.source_commit,
            "trigger": {k: v for k, v in ctx.run_tags.items() if k.startswith("knowledge/")},
            "fingerprint": fp,
            "documents": [
                {
                    "doc_id": d["doc_id"],
                    "doc_version": d["doc_version"],
                    "source_path": d["source_path"],
                    "content_hash": d["content_hash"],
                    "commit": d.get("commit"),
                    "origin": d.get("source", {}).get("origin", "git"),
                }
                for d in parsed.documents
            ],
            "counts": {
                "documents": len(parsed.documents),
                "chunks": len(chunks),
                "quarantined": len(parsed.quarantined),
                "approved_facts": len(facts),
            },
            "checks": [c.to_dict() for c in checks],
            "checks_passed": checks_passed,
            "evaluation": evaluation.summary,
            "data_quality": quality.summary,
            "data_docs": f"{DATA_DOCS_DIR}/index.html",
            "run_id": ctx.run_id,
        }

        def finish(tmp: Path) -> None:
            # The query service's BM25 and filter columns, precomputed so an alias swap opens it in a blink.
            write_search_index(tmp)
            quality.write_docs(tmp / DATA_DOCS_DIR)  # the suites' results, beside the version

        try:
            write_version(path, manifest, vectors, payloads, facts, finish=finish, relevance=relevance)
        except FileExistsError:
            # A concurrent run built the same content in the same second: same id, same files.
            manifest = read_manifest(path)  # theirs: the registry must describe the files on disk
            if manifest.get("fingerprint") != fp:
                raise
            new = False
        ctx.registry.add_version(namespace, version, path, manifest)
        outcome = "passed" if checks_passed else "FAILED"
        log(f"{namespace}: wrote {namespace}@{version} ({len(chunks)} chunks, checks {outcome})")
    published = _publish(ctx, namespace, version, vectors, payloads, facts, relevance) if checks_passed else None
    return IndexVersionRecord(
        namespace=namespace,
        version=version,
        new=new,
        published=published,
        path=str(path),
        chunks=len(chunks),
        documents=len(parsed.documents),
        checks=[c.to_dict() for c in checks],
        checks_passed=checks_passed,
        evaluation=evaluation.summary,
        data_docs=str(docs) if (docs := path / DATA_DOCS_DIR / "index.html").is_file() else None,
        seconds=round(time.perf_counter() - started, 3),
    )


def _relevance_vectors(ctx: BuildContext, namespace: str, chunks: list[dict[str, Any]]) -> np.ndarray | None:
    """The relevance model's vectors of ``chunks`` (sorted as the version's rows), None when the
    namespace carries none."""
    if not chunks or not ctx.settings.build.wants_relevance(namespace):
        return None
    found = ctx.embedding_cache.get_many(RELEVANCE_MODEL, [c["text_hash"] for c in chunks])
    absent = [c["chunk_id"] for c in chunks if c["text_hash"] not in found]
    if absent:
        raise StageMissing(f"{len(absent)} chunks of {namespace} have no relevance vector: "
                           "materialize chunk_embeddings")
    return np.stack([found[c["text_hash"]] for c in chunks]).astype(np.float32)


def _publish(ctx: BuildContext, namespace: str, version: str, vectors: np.ndarray, payloads: list,
             facts: list, relevance: np.ndarray | None) -> dict | None:
    """Mirror a checked version, with its approved facts, into the vector store (idempotent: a
    complete collection is reused)."""
    with vector_backend(ctx) as backend:
        if backend is None:
            return None
        started = time.perf_counter()
        result = backend.publish(namespace, version, vectors, payloads, facts, relevance)
        return {"collection": result.collection, "points": result.points, "reused": result.reused,
                "seconds": round(time.perf_counter() - started, 3)}


# -- index_aliases --------------------------------------------------------------------------
def index_aliases(ctx: BuildContext, namespace: str, log: Log = _quiet) -> AliasRecord:
    """The stage: this run's index_versions record in, its index_aliases record out."""
    return ctx.stages.write(move_aliases(ctx, ctx.stages.read(IndexVersionRecord, namespace), log))


def move_aliases(ctx: BuildContext, candidate: IndexVersionRecord, log: Log = _quiet) -> AliasRecord:
    """Move @latest to this run's version of the namespace if it passed its checks and is not already
    there; keep the newest N. Decided by the aliases, not by whether this run wrote the version: a
    version registered by a run that then failed or was killed is promoted by the next run. Only an
    operator's move away from a version (rollback, manual promote) is never undone by a rebuild."""
    namespace = candidate.namespace
    registry = ctx.registry
    version = candidate.version
    failed_checks = [c["name"] for c in candidate.checks if not c["passed"]]
    while True:  # decided from @latest as read; decided again if another run moves it before we do
        try:
            promoted, reason = _promote_if_due(ctx, namespace, candidate, failed_checks)
            break
        except AliasMoved as moved:
            log(f"{namespace}: {moved}; deciding again")
    mirrored = _mirror_alias(ctx, namespace)
    deleted = prune_versions(ctx, namespace)
    after = registry.aliases(namespace).get(namespace, {})
    log(f"{namespace}: @latest={after.get(LATEST)} @rollback={after.get(ROLLBACK)} ({reason})")
    return AliasRecord(
        namespace=namespace,
        version=version,
        promoted=promoted,
        held_back=bool(failed_checks),
        failed_checks=failed_checks,
        reason=reason,
        latest=after.get(LATEST),
        rollback=after.get(ROLLBACK),
        deleted_versions=deleted,
        store_alias_repaired=mirrored,
    )


def _promote_if_due(
    ctx: BuildContext, namespace: str, candidate: IndexVersionRecord, failed_checks: list[str]
) -> tuple[bool, str]:
    """(promoted, why) for this run's version; AliasMoved when @latest changed after it was read."""
    version = candidate.version
    before = ctx.registry.aliases(namespace).get(namespace, {})
    if candidate.empty:
        return False, "no documents: nothing to publish"
    if failed_checks:
        details = "; ".join(f"{c['name']}: {c['detail']}" for c in candidate.checks if not c["passed"])
        return False, f"held back: {version} failed {', '.join(failed_checks)} ({details})"
    if before.get(LATEST) == version:
        return False, f"content unchanged since {version}"
    if (action := ctx.registry.moved_off_by(namespace, version)) in OPERATOR_ACTIONS:
        return False, (
            f"content unchanged since {version}, which an operator moved @latest away from ({action}); "
            f"`knowledge promote {namespace} {version}` brings it back"
        )
    _promote(ctx, namespace, version, before.get(LATEST))
    if candidate.new:
        return True, "new version passed every check"
    return True, f"{version} passed every check and had never been promoted (its run stopped before)"


def _promote(
    ctx: BuildContext, namespace: str, version: str, previous: str | None, action: str = BUILD_PROMOTE
) -> None:
    """The vector store's alias first, then the registry (the record), compare-and-set on ``previous``;
    undo the first if the second fails. A concurrent run's alias moves are serialised by the registry;
    the store's alias follows the registry's last move (``_mirror_alias`` runs after every promotion)."""
    with vector_backend(ctx) as backend:
        if backend is not None:
            backend.switch_alias(namespace, version)
        try:
            ctx.registry.promote(namespace, version, action, expected_latest=previous)
        except Exception:
            if backend is not None and previous:
                backend.switch_alias(namespace, previous)
            raise


def _mirror_alias(ctx: BuildContext, namespace: str) -> str | None:
    """Bring the store's alias to the registry's @latest when they differ, publishing that version
    from its files if the store lacks it: a vector store configured after the version was built
    (unchanged content promotes nothing, so nothing else would ever publish it), or a store restored
    from a backup. Returns the version the alias was moved to, or None when it already matched."""
    latest = ctx.registry.aliases(namespace).get(namespace, {}).get(LATEST)
    with vector_backend(ctx) as backend:
        if backend is None or latest is None or backend.current_alias_target(namespace) == latest:
            return None
        _ensure_in_store(ctx, backend, namespace, latest)
        backend.switch_alias(namespace, latest)
        return latest


def _ensure_in_store(ctx: BuildContext, backend: Any, namespace: str, version: str) -> None:
    """Publish a registered version into the vector store from its files when the store lacks it."""
    if backend.read_version_info(namespace, version) is None:
        record = ctx.registry.version(namespace, version)
        assert record is not None  # callers only name versions the registry holds
        stored = read_version(Path(record.path))
        backend.publish(namespace, version, stored.vectors, stored.payloads, read_facts(Path(record.path)),
                        stored.relevance)


def prune_versions(ctx: BuildContext, namespace: str) -> list[str]:
    """Delete all but the newest ``keep_versions`` versions, never one an alias points to."""
    registry = ctx.registry
    pinned = set(registry.aliases(namespace).get(namespace, {}).values())
    deleted = []
    with vector_backend(ctx) as backend:
        for record in registry.versions(namespace)[ctx.settings.build.keep_versions :]:
            if record.version in pinned:
                continue
            if backend is not None:
                backend.delete_version(namespace, record.version)
            delete_version(Path(record.path))
            registry.mark_deleted(namespace, record.version)
            deleted.append(record.version)
    return deleted


class BadTarget(RuntimeError):
    """An alias move whose target version cannot be served: unknown, deleted, failed, or damaged."""


def verify_version(ctx: BuildContext, namespace: str, version: str) -> None:
    """Refuse, with the precise reason, a version an alias must not point to: unknown or deleted in
    the registry, failed checks (registry row or the manifest on disk), or files missing or damaged."""
    record = ctx.registry.version(namespace, version)
    if record is None:
        kept = ", ".join(v.version for v in ctx.registry.versions(namespace)) or "none"
        raise BadTarget(f"{namespace}@{version} is not a registered index version (kept: {kept})")
    if record.deleted:
        raise BadTarget(f"{namespace}@{version} was deleted (only the newest kept versions remain)")
    failed = [c["name"] for c in record.manifest.get("checks", []) if not c.get("passed")]
    if not record.checks_passed or failed:
        raise BadTarget(f"{namespace}@{version} failed its checks ({', '.join(failed) or 'unknown'}): not servable")
    path = Path(record.path)
    try:
        manifest = read_manifest(path)
        stored = read_version(path)
    except (OSError, ValueError) as exc:  # missing files, truncated JSON or .npy, payload/vector mismatch
        raise BadTarget(f"{namespace}@{version} has missing or damaged files at {path}: {exc}") from exc
    if manifest.get("fingerprint") != record.fingerprint or not manifest.get("checks_passed"):
        raise BadTarget(f"{namespace}@{version}: the manifest at {path} is not the registered one, or failed checks")
    if stored.vectors.shape != (record.chunks, record.manifest.get("dimension", DIMENSION)):
        raise BadTarget(
            f"{namespace}@{version}: {stored.vectors.shape[0]} vectors of dimension {stored.vectors.shape[1]} "
            f"on disk, {record.chunks} registered"
        )
    if not np.isfinite(stored.vectors).all():
        raise BadTarget(f"{namespace}@{version}: its vectors on disk are not finite (damaged file)")


def rollback(ctx: BuildContext, namespace: str) -> dict[str, Any]:
    """@latest := @rollback, after checking that @rollback can be served (BadTarget if not)."""
    target = ctx.registry.aliases(namespace).get(namespace, {}).get(ROLLBACK)
    if target:
        verify_version(ctx, namespace, target)
    with vector_backend(ctx) as backend:
        if backend is not None and target:
            backend.rollback(namespace, target)
    came_from, went_to = ctx.registry.rollback(namespace)
    after = ctx.registry.aliases(namespace).get(namespace, {})
    return {
        "namespace": namespace,
        "from": came_from,
        "to": went_to,
        "latest": after.get(LATEST),
        "rollback": after.get(ROLLBACK),
    }


def promote(ctx: BuildContext, namespace: str, version: str) -> dict[str, Any]:
    """An operator's move of @latest to any kept, checked version (audited as ``manual-promote``);
    the previous @latest becomes @rollback. BadTarget when the version cannot be served."""
    verify_version(ctx, namespace, version)
    before = ctx.registry.aliases(namespace).get(namespace, {})
    with vector_backend(ctx) as backend:
        if backend is not None:
            _ensure_in_store(ctx, backend, namespace, version)
    if before.get(LATEST) != version:
        _promote(ctx, namespace, version, before.get(LATEST), OPERATOR_PROMOTE)
    _mirror_alias(ctx, namespace)
    after = ctx.registry.aliases(namespace).get(namespace, {})
    return {
        "namespace": namespace,
        "from": before.get(LATEST),
        "to": version,
        "latest": after.get(LATEST),
        "rollback": after.get(ROLLBACK),
    }

