"""One question in, one answer out — shared by ``POST /knowledge/query`` and ``knowledge query``.

The order matters: personal data stops everything (nothing is embedded or searched); injection
patterns are logged and cut out of the searched text; the namespaces come from the actor's grant,
narrowed but never widened by the request; then embedding, hybrid retrieval with gating, and the
approved facts of the searched namespaces. Every answer is built from a single snapshot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from knowledge_plane.facts.match import match_facts
from knowledge_plane.serving.access import Actor, resolve_namespaces
from knowledge_plane.serving.guards import REDIRECT_MESSAGE, find_personal_data, has_searchable_text, scan_injection
from knowledge_plane.serving.relevance import RelevanceModel
from knowledge_plane.serving.retrieval import (
    CLARIFY_HINT,
    NEEDS_CLARIFICATION,
    REDIRECT,
    Filters,
    Hit,
    RetrievalConfig,
    RetrievalResult,
    cleared,
    relevance_floor,
    search,
)
from knowledge_plane.serving.snapshot import Snapshot

log = logging.getLogger("knowledge.query")
FACTS_LIMIT = 5


class NamespacesQuarantined(Exception):
    """The request reads a namespace that has no version which passed its checks (the service: 503)."""

    def __init__(self, namespaces: Sequence[str]):
        self.namespaces = tuple(namespaces)
        super().__init__(f"namespace(s) in quarantine, no version passed its checks: {', '.join(self.namespaces)}; "
                         f"see /knowledge/health")


class QueryEmbedder(Protocol):
    def encode_query(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class QueryRequest:
    """A validated request; the service and the CLI build it from their own inputs."""

    question: str
    namespaces: tuple[str, ...] = ()
    tenant_id: str | None = None
    pack_ids: tuple[str, ...] | None = None
    source_app: str | None = None
    source_apps: tuple[str, ...] | None = None  # several applications (with source_app: either)
    workspace: str | None = None
    caller_app: str = "unknown"
    thread_id: str | None = None
    top_k: int = 5
    language: str | None = None  # passages in this language first
    only_language: bool = False  # only passages in ``language``

    def all_source_apps(self) -> tuple[str, ...] | None:
        if self.source_app is None and self.source_apps is None:
            return None
        return tuple(dict.fromkeys([*([self.source_app] if self.source_app is not None else []),
                                    *(self.source_apps or ())]))


def scope_filters(actor: Actor, request: QueryRequest, tenant_id: str) -> tuple[Filters, list[str]]:
    """The row filters of a request: the packs and applications it asks for, within the actor's
    grant; and the flags of what it asked for outside the grant.

    A pack or application outside the grant is dropped exactly as one that does not exist: a
    request naming only such ones searches an empty scope and gets the same answer either way.
    """
    flags = []
    packs, apps = actor.readable_packs(), actor.readable_apps()
    wanted_apps = request.all_source_apps()
    if wanted_apps is None:
        source_apps = apps
    else:
        source_apps = frozenset(a for a in wanted_apps if apps is None or a in apps)
        if len(source_apps) < len(wanted_apps):
            flags.append("source_app_not_granted")
    if request.pack_ids is None:
        pack_ids, unpacked = packs, True
    else:
        pack_ids, unpacked = frozenset(p for p in request.pack_ids if packs is None or p in packs), False
        if len(pack_ids) < len(set(request.pack_ids)):
            flags.append("pack_not_granted")
    return Filters(tenant_id, pack_ids, source_apps, unpacked, request.workspace), flags


@dataclass
class QueryOutcome:
    response: dict[str, Any]  # the response body, identical for the API and the CLI
    flags: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why this status, in words (the gate's reason when the question was searched)
    retrieval: RetrievalResult | None = None  # what the gate weighed; None when nothing was searched

    def log_entry(self, actor: Actor, request: QueryRequest, latency_ms: float) -> dict[str, Any]:
        """The query-log row: who, from where, what was returned — a hash of the question, never its text."""
        return {
            "request_id": self.response["request_id"], "actor": actor.name, "caller_app": request.caller_app,
            "source_app": ",".join(request.all_source_apps() or ())[:128] or None,
            "question_sha256": question_hash(request.question), "thread_id": request.thread_id,
            "status": self.response["status"], "passage_ids": [p["chunk_id"] for p in self.response["passages"]],
            "index_versions": self.response["index_versions"], "latency_ms": round(latency_ms, 3),
            "flags": self.flags,
        }


def question_hash(question: str) -> str:
    return hashlib.sha256(question.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def passage(hit: Hit) -> dict[str, Any]:
    p = hit.payload
    return {
        "chunk_id": p["chunk_id"], "doc_id": p["doc_id"], "doc_version": p["doc_version"],
        "citation": f"{p['doc_id']}@{p['doc_version']}", "title": p.get("title") or "",
        "namespace": p["namespace"], "source_path": p.get("source_path") or "",
        "location": str(p.get("location") or ""),
        "text": p.get("text") or "", "score": round(hit.score, 4), "truth_level": hit.truth_level or "",
        "index_version": hit.index.version, "pack_id": p.get("pack_id"), "source_app": p.get("source_app"),
        "language": p.get("lang"),
    }


def _as_dict(fact: Any) -> dict[str, Any]:
    if isinstance(fact, dict):
        return fact
    if dataclasses.is_dataclass(fact) and not isinstance(fact, type):
        return dataclasses.asdict(fact)
    if hasattr(fact, "to_dict"):
        return fact.to_dict()
    return {"value": str(fact)}


class RelevanceQueries(Protocol):
    """What embeds a question for the relevance gate: the model (RelevanceModel), or a cache of it."""

    def query(self, text: str) -> np.ndarray: ...


class QueryEngine:
    def __init__(self, embedder: QueryEmbedder, config: RetrievalConfig, tenant_id: str,
                 relevance: RelevanceQueries | None = None):
        self.embedder = embedder
        self.config = config
        self.tenant_id = tenant_id
        self.relevance = relevance or RelevanceModel.shared()  # loaded when a version has relevance vectors
        self._match_facts = match_facts

    def answer(self, snapshot: Snapshot, actor: Actor, request: QueryRequest,
               request_id: str | None = None) -> QueryOutcome:
        request_id = request_id or uuid.uuid4().hex
        flags: list[str] = []
        timings: dict[str, float] = {}

        def reply(status: str, hits: Sequence[Hit] = (), confidence: float = 0.0, suggestions: Sequence[str] = (),
                  message: str | None = None, versions: dict[str, str] | None = None,
                  facts: list[dict[str, Any]] | None = None, reason: str = "",
                  retrieval: RetrievalResult | None = None) -> QueryOutcome:
            body = {
                "status": status, "passages": [passage(h) for h in hits], "confidence": confidence,
                "facts": facts or [], "suggestions": list(suggestions), "message": message,
                "index_versions": versions or {}, "request_id": request_id,
            }
            return QueryOutcome(body, flags, timings, reason or (retrieval.reason if retrieval else ""), retrieval)

        personal = find_personal_data(request.question)
        if personal:
            flags.extend(f"personal_data:{kind}" for kind in personal)
            log.info("request %s: personal data (%s), redirected, nothing searched", request_id, ", ".join(personal))
            return reply(REDIRECT, message=REDIRECT_MESSAGE,
                         reason=f"personal data in the question ({', '.join(personal)}): nothing was searched")

        scan = scan_injection(request.question)
        if scan.flagged:
            flags.extend(f"prompt_injection:{name}" for name in scan.patterns)
            log.warning("request %s: prompt-injection patterns from actor %s (caller_app %s): %s",
                        request_id, actor.name, request.caller_app, ", ".join(scan.patterns))

        resolution = resolve_namespaces(actor, request.namespaces, snapshot.namespaces)
        if resolution.ignored:
            flags.append("namespace_injection")
            log.warning("request %s: injection attempt: actor %s asked for namespaces outside its grant: %s",
                        request_id, actor.name, ", ".join(repr(ns[:140]) for ns in resolution.ignored))
        blocked = [ns for ns in resolution.namespaces if ns in snapshot.quarantined]
        if blocked:  # answering from the rest would silently leave out what the actor expects to read
            raise NamespacesQuarantined(blocked)
        indexes = snapshot.select(resolution.namespaces)
        versions = {index.namespace: index.version for index in indexes}

        if request.tenant_id is not None and request.tenant_id != self.tenant_id:
            return reply(NEEDS_CLARIFICATION, suggestions=[CLARIFY_HINT], versions=versions,
                         reason="the request names another tenant than this deployment's: nothing was searched")
        if not has_searchable_text(scan.cleaned):
            return reply(NEEDS_CLARIFICATION, suggestions=[CLARIFY_HINT], versions=versions,
                         reason="no searchable word left in the question: nothing was searched")

        started = time.perf_counter()
        vector = self.embedder.encode_query(scan.cleaned)
        timings["embed"] = (time.perf_counter() - started) * 1000
        relevance_vector = None
        if any(index.has_relevance for index in indexes):
            started = time.perf_counter()
            relevance_vector = self.relevance.query(scan.cleaned)
            timings["relevance"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        filters, denied = scope_filters(actor, request, self.tenant_id)
        flags.extend(denied)
        result = search(indexes, vector, scan.cleaned, filters, request.top_k, self.config,
                        verified_only=actor.verified_sources_only, language=request.language,
                        only_language=request.only_language, relevance_vector=relevance_vector)
        timings["search"] = (time.perf_counter() - started) * 1000
        hits = result.passages
        # A store's alias may have moved since the snapshot: report the version that answered.
        versions.update({hit.index.namespace: hit.index.version for hit in hits})
        facts: list[dict[str, Any]] = []
        if hits:
            started = time.perf_counter()
            # A request narrowed to packs, applications or a workspace (by itself or by the actor's grant)
            # gets only the facts of the documents that answered it, never those of a pack it may not read.
            narrowed = filters.pack_ids is not None or filters.source_apps is not None or filters.workspace
            sources = {h.payload["doc_id"] for h in hits} if narrowed else None
            facts = self._facts(indexes, scan.cleaned, sources)
            timings["facts"] = (time.perf_counter() - started) * 1000
        return reply(result.status, hits, result.confidence, result.suggestions, result.message,
                     versions, facts, retrieval=result)

    def explain(self, outcome: QueryOutcome, limit: int = 10) -> dict[str, Any]:
        """Why ``outcome`` has its status: the gate's reason, its thresholds and bounds, and the best
        ``limit`` candidates by score (each with its parts, its namespace's threshold, whether it
        cleared it and whether it was returned); the passages judged by the relevance model first, by
        relevance. Read from what the gate computed; decides nothing."""
        config, result = self.config, outcome.retrieval
        ranked = result.ranked if result else []
        returned = {id(h) for h in result.passages} if result else set()
        fused_rank = {id(h): rank for rank, h in enumerate(ranked, start=1)}
        best = sorted(ranked, key=lambda h: (h.relevance is None, -(h.score if h.relevance is None else h.relevance)))[
            :limit]
        floor = relevance_floor(ranked, config)
        namespaces = sorted({h.index.namespace for h in ranked} | set(outcome.response["index_versions"]))

        def candidate(h: Hit) -> dict[str, Any]:
            payload, threshold = h.payload, config.threshold(h.index.namespace)
            return {
                "citation": f"{payload['doc_id']}@{payload['doc_version']}", "title": payload.get("title") or "",
                "location": str(payload.get("location") or ""), "namespace": h.index.namespace,
                "score": round(h.score, 4), "cosine": round(h.cosine, 4), "coverage": round(h.coverage, 4),
                "bm25": round(h.bm25, 4), "fused_rank": fused_rank[id(h)], "threshold": threshold,
                "relevance": None if h.relevance is None else round(h.relevance, 4),
                "cleared": cleared(h, config, floor), "returned": id(h) in returned,
            }

        return {
            "status": outcome.response["status"],
            "reason": outcome.reason,
            "confidence": outcome.response["confidence"],
            "thresholds": {ns: config.threshold(ns) for ns in namespaces},
            "min_passages": config.min_passages,
            "relevance_threshold": config.relevance_threshold,
            "relevance_floor": floor,
            "low_confidence_below": config.low_confidence_below,
            "candidates": result.candidates if result else 0,
            "above_threshold": result.above_threshold if result else 0,
            "best_candidates": [candidate(h) for h in best],
        }

    def _facts(self, indexes: Sequence[Any], question: str, sources: set[str] | None = None) -> list[dict[str, Any]]:
        """The published facts the question matches; with ``sources``, only those of these documents."""
        candidates = [f for index in indexes for f in index.facts
                      if f.get("tenant_id", self.tenant_id) == self.tenant_id
                      and (sources is None or str(f.get("source", "")).partition("@")[0] in sources)]
        if not candidates:
            return []
        try:
            return [_as_dict(f) for f in self._match_facts(question, candidates, FACTS_LIMIT)]
        except Exception:  # facts enrich an answer; a matcher bug must not turn it into a 500
            log.exception("fact matching failed; answering without facts")
            return []
