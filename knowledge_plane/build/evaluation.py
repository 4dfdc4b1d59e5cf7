"""Evaluation-gated promotion: a candidate version must still answer its namespace's golden questions.

A namespace may carry ``knowledge/<domain>/_golden.yaml`` (see docs/quality.md, "Evaluation"): questions
with the document that must answer each (and optionally a passage substring that must be in one
of the top three passages), off-topic questions that must be turned away, floors per figure and
an optional margin. The candidate version is queried through the query service's own engine
(``knowledge_plane.serving.query_engine.QueryEngine``: same guards, same hybrid retrieval, same gate and thresholds,
read from the same environment as the service), before it is written, and five figures come out:

* ``recall_at_5`` — share of questions whose document is among the passages returned (top 5);
* ``mrr`` — mean reciprocal rank of the first passage of that document (0 when absent);
* ``answer_in_top_3`` — share whose answer (the passage substring, else the document) is in the top 3;
* ``answered`` — share of on-topic questions that got an answer (the gate let them through);
* ``turned_away`` — share of off-topic questions that got ``needs_clarification``.

Every figure counts what a caller would get: a question the gate turns away finds nothing.
The blocking check ``evaluation`` fails when a figure is below its floor, or more than the margin
(at least one question's worth) below what the version ``@latest`` serves scores on the same questions
today. Only the questions
are embedded, once: their vectors go to the build's embedding cache, keyed like chunk texts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from knowledge_plane.build.checks import CheckResult
from knowledge_plane.build.sources import GOLDEN_FILE
from knowledge_plane.domain.embedding_model import MODEL_NAME, RELEVANCE_MODEL
from knowledge_plane.domain.ids import sha256_hex, text_hash
from knowledge_plane.serving.access import EVERY, Actor
from knowledge_plane.serving.config import retrieval_config
from knowledge_plane.serving.query_engine import QueryEngine, QueryRequest
from knowledge_plane.serving.retrieval import LOW_CONFIDENCE, REFUSED, SUCCESS, LoadedIndex, RetrievalConfig
from knowledge_plane.serving.snapshot import Snapshot
from knowledge_plane.storage.index_store import IndexVersion, read_manifest
from knowledge_plane.storage.registry import LATEST

if TYPE_CHECKING:
    from knowledge_plane.build.records import IndexVersionRecord
    from knowledge_plane.build.stages import BuildContext

CHECK_NAME = "evaluation"
FIGURES = ("recall_at_5", "mrr", "answer_in_top_3", "answered", "turned_away")
ANSWERED = frozenset({SUCCESS, LOW_CONFIDENCE, REFUSED})  # the gate let the question through
TOP_K = 5
ANSWER_DEPTH = 3
MISSES_KEPT = 10


class GoldenSetError(ValueError):
    """A golden file that cannot be used; the check fails with this message rather than passing blind."""


@dataclass(frozen=True)
class GoldenQuestion:
    question: str
    doc_id: str
    passage: str | None = None  # a substring one of the top 3 passages of doc_id must contain


@dataclass(frozen=True)
class GoldenSet:
    """A namespace's evaluation questions, as its ``_golden.yaml`` states them."""

    path: Path
    sha256: str
    questions: tuple[GoldenQuestion, ...]
    off_topic: tuple[str, ...] = ()
    floors: dict[str, float] = field(default_factory=dict)
    margin: float | None = None  # None: the build's KNOWLEDGE_EVAL_MARGIN


def _number(value: Any, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise GoldenSetError(f"{path}: {what} must be a number between 0 and 1, got {value!r}")
    return float(value)


def load_golden(path: Path) -> GoldenSet:
    """Read and validate a golden file; every problem is named with the entry it is in."""
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        raise GoldenSetError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise GoldenSetError(f"{path}: expected a mapping with 'questions', 'off_topic' and 'floors'")
    unknown = set(data) - {"questions", "off_topic", "floors", "margin"}
    if unknown:
        raise GoldenSetError(f"{path}: unknown keys {sorted(unknown)}")
    questions = []
    for i, item in enumerate(data.get("questions") or [], start=1):
        if not isinstance(item, dict) or not str(item.get("question") or "").strip() or not item.get("doc_id"):
            raise GoldenSetError(f"{path}: question {i} needs a non-empty 'question' and a 'doc_id'")
        passage = item.get("passage")
        questions.append(GoldenQuestion(str(item["question"]).strip(), str(item["doc_id"]),
                                        str(passage) if passage else None))
    if not questions:
        raise GoldenSetError(f"{path}: no questions")
    off_topic = tuple(str(q).strip() for q in data.get("off_topic") or [] if str(q).strip())
    floors = {}
    for name, value in (data.get("floors") or {}).items():
        if name not in FIGURES:
            raise GoldenSetError(f"{path}: unknown floor {name!r}; figures are {', '.join(FIGURES)}")
        floors[name] = _number(value, f"floor {name}", path)
    margin = _number(data["margin"], "margin", path) if data.get("margin") is not None else None
    return GoldenSet(path, sha256_hex(raw), tuple(questions), off_topic, floors, margin)


def golden_path(ctx: BuildContext, namespace: str) -> Path | None:
    if not namespace.startswith("knowledge:"):
        return None
    path = ctx.settings.paths.corpus_dir / namespace.split(":", 1)[1] / GOLDEN_FILE
    return path if path.is_file() else None


# The relevance model embeds questions and passages differently (e5's query: / passage: prefixes).
RELEVANCE_QUESTIONS = f"{RELEVANCE_MODEL} query"


class CachedQuestions:
    """The question vectors of a golden set: read from the embedding cache, the missing ones encoded
    in one batch and stored there, so a rebuild embeds no question twice. The same for the relevance
    model's question vectors, read when a version with relevance vectors is first queried."""

    def __init__(self, ctx: BuildContext, texts: Sequence[str]):
        self._ctx = ctx
        self._relevance: dict[str, np.ndarray] | None = None
        keys = {text_hash(t): t for t in texts}
        self._texts = keys
        found = ctx.embedding_cache.get_many(MODEL_NAME, keys)
        missing = [h for h in keys if h not in found]
        if missing:
            vectors = ctx.embedder.encode([keys[h] for h in missing])
            fresh = dict(zip(missing, vectors, strict=True))
            ctx.embedding_cache.put_many(MODEL_NAME, fresh)
            found.update(fresh)
        self.embedded = len(missing)
        self._vectors = found

    def encode_query(self, text: str) -> np.ndarray:
        return self._vectors[text_hash(text)]

    def query(self, text: str) -> np.ndarray:
        """The relevance model's vector of the question (the query engine's ``relevance``)."""
        if self._relevance is None:
            cache, model = self._ctx.embedding_cache, RELEVANCE_QUESTIONS
            self._relevance = cache.get_many(model, self._texts)
            fresh = {h: self._ctx.relevance.query(t) for h, t in self._texts.items() if h not in self._relevance}
            if fresh:
                cache.put_many(model, fresh)
                self._relevance.update(fresh)
        return self._relevance[text_hash(text)]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def score_index(index: LoadedIndex, golden: GoldenSet, engine: QueryEngine) -> dict[str, Any]:
    """The five figures of one loaded version on a golden set, and the questions it missed."""
    namespace = index.namespace
    snapshot = Snapshot({namespace: index}, time.time())
    actor = Actor("evaluation", namespaces=frozenset({namespace}), packs=EVERY, source_apps=EVERY)
    hits = reciprocal = answers = answered = 0
    misses: list[dict[str, Any]] = []
    for q in golden.questions:
        response = engine.answer(snapshot, actor, QueryRequest(q.question, top_k=TOP_K)).response
        passages = response["passages"]
        answered += response["status"] in ANSWERED
        rank = next((i for i, p in enumerate(passages, start=1) if p["doc_id"] == q.doc_id), None)
        hits += rank is not None
        reciprocal += 1.0 / rank if rank else 0.0
        found = any(p["doc_id"] == q.doc_id and (q.passage is None or _normal(q.passage) in _normal(p["text"]))
                    for p in passages[:ANSWER_DEPTH])
        answers += found
        if not found:
            misses.append({"question": q.question, "doc_id": q.doc_id, "status": response["status"],
                           "got": [p["doc_id"] for p in passages[:ANSWER_DEPTH]]})
    turned_away = 0
    for text in golden.off_topic:
        status = engine.answer(snapshot, actor, QueryRequest(text, top_k=TOP_K)).response["status"]
        turned_away += status not in ANSWERED
        if status in ANSWERED:
            misses.append({"question": text, "doc_id": None, "status": status, "got": []})
    n, m = len(golden.questions), len(golden.off_topic)
    figures = {
        "recall_at_5": hits / n,
        "mrr": reciprocal / n,
        "answer_in_top_3": answers / n,
        "answered": answered / n,
        "turned_away": turned_away / m if m else 1.0,
    }
    return {"figures": {k: round(v, 4) for k, v in figures.items()}, "misses": misses[:MISSES_KEPT]}


@dataclass
class Evaluation:
    """The check result, and what goes into the manifest and the asset metadata (None: no golden set)."""

    check: CheckResult
    summary: dict[str, Any] | None = None


def _config_key(config: RetrievalConfig) -> str:
    return sha256_hex(repr(config))[:16]


def _baseline(ctx: BuildContext, namespace: str, golden: GoldenSet, engine: QueryEngine) -> dict[str, Any] | None:
    """What the version @latest serves scores on the same golden set and gate: from its manifest when
    it was evaluated on exactly these questions and settings, else by querying it now."""
    latest = ctx.registry.aliases(namespace).get(namespace, {}).get(LATEST)
    record = ctx.registry.version(namespace, latest) if latest else None
    if record is None or not Path(record.path).is_dir():
        return None
    stored = record.manifest.get(CHECK_NAME) or {}
    if stored.get("golden_sha256") == golden.sha256 and stored.get("config") == _config_key(engine.config):
        return {"version": latest, "figures": stored["figures"]}
    index = LoadedIndex.open(Path(record.path), manifest=read_manifest(Path(record.path)))
    return {"version": latest, "figures": score_index(index, golden, engine)["figures"]}


def tolerated_drop(figure: str, margin: float, golden: GoldenSet) -> float:
    """How far a figure may fall below @latest's: the margin, but never less than one question of the
    set. One question whose third passage moves from 0.360 to 0.359 against a 0.36 threshold is noise,
    not a regression; with 17 questions a 0.05 margin would hold a namespace back for it (the floors
    still bound every figure)."""
    count = len(golden.off_topic) if figure == "turned_away" else len(golden.questions)
    return max(margin, 1 / count) if count else margin


def evaluation_check(ctx: BuildContext, namespace: str, vectors: np.ndarray,
                     payloads: list[dict[str, Any]], relevance: np.ndarray | None = None) -> Evaluation:
    """Query the candidate (not yet written) and compare it with its floors and with @latest."""
    path = golden_path(ctx, namespace)
    if path is None:
        return Evaluation(CheckResult(CHECK_NAME, True, "no golden set"))
    started = time.perf_counter()
    try:
        golden = load_golden(path)
    except GoldenSetError as exc:
        return Evaluation(CheckResult(CHECK_NAME, False, str(exc)))
    if not payloads:  # nothing to query (non_empty fails too); an empty index answers nothing
        return Evaluation(CheckResult(CHECK_NAME, False, "no chunks to evaluate"))
    # The query service's weights and thresholds: a version is judged by the gate that will serve it.
    config = retrieval_config(ctx.settings.service)
    questions = CachedQuestions(ctx, [q.question for q in golden.questions] + list(golden.off_topic))
    engine = QueryEngine(questions, config, ctx.settings.tenant_id, relevance=questions)
    candidate = LoadedIndex.from_version(
        IndexVersion(path.parent, {"namespace": namespace, "version": "candidate"}, vectors, payloads, relevance))
    result = score_index(candidate, golden, engine)
    figures = result["figures"]
    baseline = _baseline(ctx, namespace, golden, engine)
    margin = golden.margin if golden.margin is not None else ctx.settings.build.eval_margin
    problems = [f"{name} {figures[name]:.2f} is below the floor {floor:.2f}"
                for name, floor in golden.floors.items() if figures[name] < floor]
    if baseline is not None:
        problems += [
            f"{name} dropped from {before:.2f} (@latest {baseline['version']}) to {figures[name]:.2f}, "
            f"more than the margin {allowed:.2f}"
            for name, before in baseline["figures"].items()
            # The figures are rounded to 4 decimals: their difference is off by up to 1e-4.
            if name in figures and before - figures[name] > (allowed := tolerated_drop(name, margin, golden)) + 1e-3
        ]
    shown = ", ".join(f"{name} {figures[name]:.2f}" for name in FIGURES)
    detail = (f"{'; '.join(problems)} ({shown})" if problems
              else f"{len(golden.questions)} questions, {len(golden.off_topic)} off-topic: {shown}")
    summary = {
        "golden": path.name,
        "golden_sha256": golden.sha256,
        "config": _config_key(config),
        "questions": len(golden.questions),
        "off_topic": len(golden.off_topic),
        "figures": figures,
        "floors": golden.floors,
        "margin": margin,
        "baseline": baseline,
        "questions_embedded": questions.embedded,
        "misses": result["misses"],
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Evaluation(CheckResult(CHECK_NAME, not problems, detail), summary)


def evaluation_metadata(record: IndexVersionRecord) -> dict[str, float]:
    """One number per figure for the metadata of the namespace's partition, which the Dagster UI plots
    across its materializations (``evaluation/<figure>``)."""
    figures = record.evaluation["figures"] if record.evaluation else {}
    return {f"{CHECK_NAME}/{name}": float(value) for name, value in figures.items()}
