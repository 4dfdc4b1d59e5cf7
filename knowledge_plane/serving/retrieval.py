"""Hybrid retrieval over loaded index versions: dense + BM25, rank fusion, thresholds and gating.

Two numbers per candidate passage, each with one job:

* the **fused score** orders passages: a convex combination of the cosine (against the
  memory-mapped vectors) and the BM25 score divided by the question's best BM25 score,
  ``(w_dense × cosine + w_bm25 × bm25 / max bm25) / (w_dense + w_bm25)``, over the union of the
  ``candidates`` best of each ranking. It replaced reciprocal-rank fusion, which throws away how far
  ahead a passage is: on the public evaluation sets the answer reached the top 3 for 0.76 → 0.81 of
  the held-out questions (docs/quality.md);
* the **score** decides whether a passage is relevant enough to be shown at all:
  ``dense_share × cosine + (1 − dense_share) × coverage``, where coverage is the share of the
  question's IDF weight the passage contains. Cosine alone cannot tell on-topic from off-topic
  French questions with this English-first model (off-topic questions reach 0.5); coverage drops
  to zero for questions whose informative words the corpus never uses. Per-namespace thresholds
  apply to this score, and it is the ``score`` a response reports;
* the **relevance**, when the version carries the relevance model's vectors (``relevance.npy``,
  knowledge_plane.serving.relevance): the cosine of multilingual-e5-small between the question and
  the passage. It then decides instead of the score: a passage is shown when its relevance reaches
  ``relevance_threshold``, and one such passage is enough to answer (the score needs three, or one
  far above its threshold, because a single passage's score says too little).

Filters (tenant, packs, source applications, workspace: the request's within the actor's grant)
select rows before anything is ranked, so a filtered out passage can neither be returned nor push another one down.

A namespace served by a vector store (knowledge_plane.serving.backend_index) ranks with the store's own hybrid
fusion, but its passages are gated on the same score, computed from the stored vector and the
version's term statistics: one calibration holds for every backend.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
import zipfile
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from knowledge_plane.domain.ids import namespace_entry
from knowledge_plane.domain.lexical import BM25Builder, BM25Index, lexical_text
from knowledge_plane.storage.index_store import PAYLOADS, VECTORS, IndexVersion, read_manifest, read_relevance

log = logging.getLogger("knowledge.query")
SEARCH_INDEX = "search_index.npz"  # optional, written by the build beside vectors.npy (write_search_index)
SEARCH_INDEX_FORMAT = 2  # 2: the workspace column

TRUTH_WEIGHTS: dict[str, float] = {"L1": 1.0, "L2": 0.9, "L3": 0.6, "L4": 0.4}
VERIFIED_LEVELS = frozenset({"L1", "L2"})
UNKNOWN_TRUTH_WEIGHT = 0.4  # a passage without a level counts as a draft

SUCCESS, LOW_CONFIDENCE, NEEDS_CLARIFICATION, REFUSED, REDIRECT = (
    "success", "low_confidence", "needs_clarification", "refused", "redirect")
STATUSES = (SUCCESS, LOW_CONFIDENCE, NEEDS_CLARIFICATION, REFUSED, REDIRECT)

# Calibrated on bench/calibration/ (bench/query.py prints the rates): stricter for code and KPI
# runbooks than for the documentation, as in the source documents' 0.75 / 0.80 / 0.65 / 0.70.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "default": 0.38,
    "knowledge:*": 0.36,
    "internal:*": 0.39,
    "knowledge:runbooks": 0.40,
}
CLARIFY_HINT = ("Pouvez-vous préciser votre question : la pièce concernée, le véhicule (marque, modèle, "
                "motorisation) ou la situation rencontrée ?")
REFUSED_MESSAGE = ("Les seules sources trouvées pour cette question ne sont pas vérifiées ; je ne peux pas y répondre. "
                   "Un conseiller peut vous aider depuis votre espace client.")


@dataclass(frozen=True)
class RetrievalConfig:
    """Every knob of retrieval, with the calibrated defaults."""

    dense_weight: float = 1.0  # weight of the cosine in the fused score
    bm25_weight: float = 1.0  # weight of the BM25 score (divided by the question's best) in the fused score
    candidates: int = 50  # taken from each ranking before fusion
    dense_share: float = 0.7  # score = dense_share × cosine + (1 − dense_share) × lexical coverage
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    min_passages: int = 3  # fewer passages above threshold → needs_clarification...
    # ...unless the best one clears its threshold by this much (None: the minimum always applies). 0.15
    # keeps every calibration set's turned-away rate; 0.05 let near-topic questions through (docs/quality.md).
    lone_margin: float | None = 0.15
    strong_margin: float = 0.15  # a passage scoring threshold + margin counts fully in confidence
    low_confidence_below: float = 0.65  # so that unverified (L3/L4) sources alone are never a plain success
    suggestion_margin: float = 0.08  # near misses within this of the threshold are offered as suggestions
    truth_weights: Mapping[str, float] = field(default_factory=lambda: dict(TRUTH_WEIGHTS))
    # Calibrated on bench/calibration's tuning sets with the golden and public tuning sets (docs/quality.md):
    # 0.84 lets a tenth of the held-out off-topic questions through, 0.86 turns away on-topic ones.
    relevance_threshold: float = 0.845
    # Of those, the passages within this of the best one's relevance are shown: the threshold is a judgement
    # on the question; the best passages of a relevant question lie close together (0.02: same answers in the
    # top 3 on the evaluation sets as no spread, half as many passages).
    relevance_spread: float = 0.02

    def threshold(self, namespace: str) -> float:
        """Exact namespace first, then the longest matching pattern (``knowledge:*``), then ``default``."""
        entry = namespace_entry(self.thresholds, namespace)
        if entry is not None:
            return self.thresholds[entry]
        return self.thresholds.get("default", DEFAULT_THRESHOLDS["default"])


def parse_thresholds(value: str | None, base: Mapping[str, float] | None = None) -> dict[str, float]:
    """``"default=0.4,internal:*=0.42"`` over the defaults; a malformed entry is an error."""
    out = dict(DEFAULT_THRESHOLDS if base is None else base)
    for raw in (value or "").split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, number = item.rpartition("=")
        try:
            threshold = float(number)
        except ValueError:
            threshold = float("nan")
        if not sep or not key.strip() or not -1.0 <= threshold <= 1.0:
            raise ValueError(f"invalid score threshold {item!r}: expected 'namespace=number' with -1 ≤ number ≤ 1")
        out[key.strip()] = threshold
    return out


@dataclass(frozen=True)
class Filters:
    """Row filters applied before ranking: the request's narrowing within the actor's grant.

    None means "no constraint" except for the tenant. ``pack_ids`` keeps the rows of those packs;
    with ``unpacked`` the rows outside every pack (the Git corpus) pass too — what an actor granted
    some packs, or none, reads when it asks for no pack.
    """

    tenant_id: str
    pack_ids: frozenset[str] | None = None
    source_apps: frozenset[str] | None = None
    unpacked: bool = False
    workspace: str | None = None  # rows uploaded into this workspace of their application only


class PayloadFile:
    """A version's payloads read on demand from payloads.jsonl: only line offsets stay in memory.

    A search needs the full payload of its few returned passages only; keeping 100k parsed dicts
    would cost hundreds of MiB per worker. The file is immutable and stays readable through its
    open descriptor even if the build plane prunes the version while a request still holds it.
    """

    def __init__(self, path: Path, starts: np.ndarray, lengths: np.ndarray):
        self._fd = os.open(path, os.O_RDONLY)
        self._finalizer = weakref.finalize(self, os.close, self._fd)
        self._starts = starts
        self._lengths = lengths

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, row: int) -> dict[str, Any]:
        return json.loads(os.pread(self._fd, int(self._lengths[row]), int(self._starts[row])))


class _Columns:
    """Low-cardinality payload fields as integer codes: what filters and truth weights need per row."""

    NAMES = ("tenant_id", "pack_id", "source_app", "workspace", "truth_level")

    def __init__(self) -> None:
        self._codes: dict[str, dict[str | None, int]] = {name: {} for name in self.NAMES}
        self._rows: dict[str, array] = {name: array("i") for name in self.NAMES}

    def add(self, payload: dict[str, Any]) -> None:
        for name in self.NAMES:
            codes = self._codes[name]
            self._rows[name].append(codes.setdefault(payload.get(name), len(codes)))

    def finish(self) -> dict[str, tuple[np.ndarray, dict[str | None, int]]]:
        return {name: (np.frombuffer(self._rows[name], dtype=np.int32).copy(), self._codes[name])
                for name in self.NAMES}


class LoadedIndex:
    """One index version ready to search: memory-mapped vectors, BM25, filter columns, payloads on demand."""

    def __init__(self, path: Path, manifest: dict[str, Any], vectors: np.ndarray,
                 payloads: Sequence[dict[str, Any]] | PayloadFile, bm25: BM25Index,
                 columns: dict[str, tuple[np.ndarray, dict[str | None, int]]], facts: Sequence[dict[str, Any]] = (),
                 relevance: np.ndarray | None = None):
        self.path = path
        self.manifest = manifest
        self.namespace: str = manifest["namespace"]
        self.version: str = manifest["version"]
        self.vectors = vectors
        self._payloads = payloads
        self.bm25 = bm25
        self._columns = columns
        truth_codes, truth_values = columns["truth_level"]
        self._truth_names = {code: value or "" for value, code in truth_values.items()}
        self._truth_codes = truth_codes
        self.facts = list(facts)
        self.relevance = relevance  # the relevance model's passage vectors, when the build wrote them
        self.has_relevance = relevance is not None

    @classmethod
    def from_version(cls, version: IndexVersion, facts: Sequence[dict[str, Any]] = ()) -> LoadedIndex:
        """From a version already read into memory (small versions, tests)."""
        columns = _Columns()
        for payload in version.payloads:
            columns.add(payload)
        bm25 = BM25Index([lexical_text(p) for p in version.payloads])
        return cls(version.path, version.manifest, version.vectors, version.payloads, bm25, columns.finish(), facts,
                   version.relevance)

    @classmethod
    def open(cls, path: Path, facts: Sequence[dict[str, Any]] = (), manifest: dict[str, Any] | None = None,
             vectors: np.ndarray | None = None) -> LoadedIndex:
        """Open a version folder: its search index if the build wrote one, else computed from the payloads."""
        manifest = manifest if manifest is not None else read_manifest(path)
        vectors = vectors if vectors is not None else np.load(path / VECTORS, mmap_mode="r")
        parts = _read_search_index(path, vectors.shape[0]) or _scan_payloads(path)
        bm25, columns, starts, lengths = parts
        if len(starts) != vectors.shape[0]:
            raise ValueError(f"{path}: {len(starts)} payloads for {vectors.shape[0]} vectors")
        return cls(path, manifest, vectors, PayloadFile(path / PAYLOADS, starts, lengths), bm25, columns, facts,
                   read_relevance(path, vectors.shape[0]))

    def __len__(self) -> int:
        return len(self._payloads)

    def payload(self, row: int) -> dict[str, Any]:
        return self._payloads[row]

    def truth_level(self, row: int) -> str:
        return self._truth_names[int(self._truth_codes[row])]

    def rows(self, filters: Filters) -> np.ndarray | None:
        """Indices of the rows passing ``filters``; None when every row passes."""
        keep: np.ndarray | None = None
        wanted: dict[str, set[str | None]] = {"tenant_id": {filters.tenant_id}}
        if filters.pack_ids is not None:
            wanted["pack_id"] = {*filters.pack_ids, *([None] if filters.unpacked else [])}
        if filters.source_apps is not None:
            wanted["source_app"] = set(filters.source_apps)
        if filters.workspace is not None:
            wanted["workspace"] = {filters.workspace}
        for name, values in wanted.items():
            column, codes = self._columns[name]
            present = [codes[v] for v in values if v in codes]
            if len(present) == len(codes):
                continue  # every value of the column is wanted
            match = np.isin(column, present)
            keep = match if keep is None else keep & match
        return None if keep is None else np.flatnonzero(keep)


_Parts = tuple[BM25Index, dict[str, tuple[np.ndarray, dict[str | None, int]]], np.ndarray, np.ndarray]


def _scan_payloads(path: Path) -> _Parts:
    """Stream payloads.jsonl once: BM25, filter columns and line offsets, without keeping the payloads."""
    builder, columns = BM25Builder(), _Columns()
    starts, lengths, block = array("q"), array("i"), []
    position = 0
    with open(path / PAYLOADS, "rb") as fh:
        for line in fh:
            if line.strip():
                payload = json.loads(line)
                starts.append(position)
                lengths.append(len(line))
                columns.add(payload)
                block.append(lexical_text(payload))
                if len(block) >= BM25Index.BLOCK:
                    builder.add(block)
                    block = []
            position += len(line)
    builder.add(block)
    return (BM25Index(builder=builder), columns.finish(), np.frombuffer(starts, dtype=np.int64).copy(),
            np.frombuffer(lengths, dtype=np.int32).copy())


def write_search_index(path: Path) -> Path:
    """Precompute beside a version what opening it needs (BM25, filter columns, payload offsets).

    For the build plane, before the version is published: the query service then opens a version
    in a fraction of a second instead of tokenising every chunk (seconds at 100k chunks), which
    is what keeps an alias swap fast. Without the file the service computes the same in memory.
    """
    bm25, columns, starts, lengths = _scan_payloads(path)
    arrays: dict[str, np.ndarray] = {"format": np.array(SEARCH_INDEX_FORMAT), "rows": np.array(len(starts)),
                                     "starts": starts, "lengths": lengths, **bm25.to_arrays()}
    for name, (codes, values) in columns.items():
        arrays[f"column_{name}"] = codes
        arrays[f"values_{name}"] = np.array(json.dumps(list(values)))
    target = path / SEARCH_INDEX
    tmp = path / f".{SEARCH_INDEX}.tmp-{os.getpid()}"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, target)
    return target


def _read_search_index(path: Path, rows: int) -> _Parts | None:
    target = path / SEARCH_INDEX
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        if int(arrays["format"]) != SEARCH_INDEX_FORMAT or int(arrays["rows"]) != rows:
            raise ValueError(f"format {int(arrays['format'])}, {int(arrays['rows'])} rows for {rows} vectors")
        columns = {}
        for name in _Columns.NAMES:
            values = json.loads(str(arrays[f"values_{name}"]))
            columns[name] = (arrays[f"column_{name}"].astype(np.int32), {v: i for i, v in enumerate(values)})
        return BM25Index.from_arrays(arrays), columns, arrays["starts"], arrays["lengths"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("%s is unusable (%s); computing the search index from the payloads", target, exc)
        return None


class PassageSource(Protocol):
    """Where a hit's passage lives: a loaded version (by row), or one passage found through a store."""

    namespace: str
    version: str

    def payload(self, row: int) -> dict[str, Any]: ...

    def truth_level(self, row: int) -> str: ...


class RemoteIndex(Protocol):
    """A namespace searched by a vector store: its own candidates, gated here like local ones."""

    namespace: str
    version: str
    facts: list[dict[str, Any]]
    has_relevance: bool  # its hits carry the relevance model's cosine when given the question's vector

    def __len__(self) -> int: ...  # the chunks of the version

    def candidates(self, query_vector: np.ndarray, query_text: str, filters: Filters,
                   config: RetrievalConfig, relevance_vector: np.ndarray | None = None) -> list[Hit]: ...


@dataclass(frozen=True)
class Hit:
    """A candidate passage with the numbers that placed it."""

    index: PassageSource
    row: int
    cosine: float
    coverage: float
    bm25: float
    score: float
    fused: float
    relevance: float | None = None  # the relevance model's cosine, when the version has its vectors

    @property
    def payload(self) -> dict[str, Any]:
        return self.index.payload(self.row)

    @property
    def truth_level(self) -> str:
        return self.index.truth_level(self.row)


@dataclass
class RetrievalResult:
    status: str
    passages: list[Hit]
    confidence: float
    suggestions: list[str] = field(default_factory=list)
    message: str | None = None
    candidates: int = 0  # rows that passed the filters (passages a store returned, for a store's namespace)
    above_threshold: int = 0
    reason: str = ""  # why the gate decided this status, in words (``knowledge query --explain``)
    ranked: list[Hit] = field(default_factory=list)  # every candidate the gate weighed, in fused order


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest values, largest first."""
    if len(values) <= count:
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, count - 1)[:count]
    return part[np.argsort(-values[part], kind="stable")]


def search(
    indexes: Sequence[LoadedIndex | RemoteIndex],
    query_vector: np.ndarray,
    query_text: str,
    filters: Filters,
    top_k: int,
    config: RetrievalConfig,
    verified_only: bool = False,
    language: str | None = None,
    only_language: bool = False,
    relevance_vector: np.ndarray | None = None,
) -> RetrievalResult:
    """Rank, gate and weigh the passages of ``indexes`` for one question (``language``: see ``gate``;
    ``relevance_vector``: the question's relevance-model vector, for the versions that carry theirs)."""
    local = [index for index in indexes if isinstance(index, LoadedIndex)]
    ranked, total = _local_candidates(local, query_vector, query_text, filters, config, relevance_vector)
    remote = [index for index in indexes if not isinstance(index, LoadedIndex)]
    for index in remote:
        found = index.candidates(query_vector, query_text, filters, config, relevance_vector)
        ranked.extend(found)
        total += len(found)
    if remote:  # each store ranked its own namespace; the fused scores use the same formula
        ranked.sort(key=lambda h: (-h.fused, -h.score))
    narrowed = total < sum(len(index) for index in indexes)  # the filters left some rows out
    return gate(ranked, total, top_k, config, verified_only, narrowed, language, only_language)


def _local_candidates(indexes: Sequence[LoadedIndex], query_vector: np.ndarray, query_text: str, filters: Filters,
                      config: RetrievalConfig, relevance_vector: np.ndarray | None = None) -> tuple[list[Hit], int]:
    """The loaded versions' candidates in fused order (the best of the dense and of the BM25 ranking
    over all rows, ordered by ``fused_score``), and how many rows passed the filters."""
    parts: list[tuple[LoadedIndex, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    vector = np.asarray(query_vector, dtype=np.float32)
    for index in indexes:
        rows = index.rows(filters)
        if rows is not None and not len(rows):
            continue
        if rows is None:
            cosine = index.vectors @ vector
            rows = np.arange(len(index), dtype=np.int64)
        else:
            cosine = index.vectors[rows] @ vector
        lexical = index.bm25.score(query_text)
        parts.append((index, rows, np.asarray(cosine, dtype=np.float32), lexical.coverage[rows], lexical.bm25[rows]))
    total = sum(len(p[1]) for p in parts)
    if not total:
        return [], 0

    owner = np.concatenate([np.full(len(p[1]), i, dtype=np.int32) for i, p in enumerate(parts)])
    rows = np.concatenate([p[1] for p in parts])
    cosine = np.concatenate([p[2] for p in parts])
    coverage = np.concatenate([p[3] for p in parts])
    bm25 = np.concatenate([p[4] for p in parts])
    score = gate_score(cosine, coverage, config)

    lexical_pool = np.flatnonzero(bm25 > 0)
    pool = np.union1d(_top(cosine, config.candidates), lexical_pool[_top(bm25[lexical_pool], config.candidates)])
    fused = fused_score(cosine[pool], bm25[pool], config)
    order = pool[np.lexsort((-score[pool], -fused))]
    fused_of = dict(zip(pool.tolist(), fused.tolist(), strict=True))
    # The relevance of the candidates only, one gather and one product per version (rows ascending).
    relevance_of: dict[int, float] = {}
    for k, (index, *_) in enumerate(parts):
        if index.relevance is not None and relevance_vector is not None:
            mine = pool[owner[pool] == k]
            values = np.asarray(index.relevance[rows[mine]], dtype=np.float32) @ relevance_vector
            relevance_of.update(zip(mine.tolist(), values.tolist(), strict=True))

    return [Hit(parts[owner[i]][0], int(rows[i]), float(cosine[i]), float(coverage[i]), float(bm25[i]),
                float(score[i]), fused_of[int(i)], relevance_of.get(int(i))) for i in order], total


def fused_score(cosine: np.ndarray, bm25: np.ndarray, config: RetrievalConfig) -> np.ndarray:
    """The ordering score of candidates (see the module docstring): BM25 is divided by the best
    candidate's, so both terms lie on comparable scales whatever the question's length."""
    best = float(bm25.max()) if len(bm25) else 0.0
    lexical = bm25 / best if best > 0 else np.zeros_like(bm25)
    weights = config.dense_weight + config.bm25_weight
    if weights <= 0:
        return np.zeros_like(cosine)
    return (config.dense_weight * cosine + config.bm25_weight * lexical) / weights


def relevance_floor(ranked: Sequence[Hit], config: RetrievalConfig) -> float:
    """The relevance a passage must reach to be shown: the threshold, or the best candidate's relevance
    less ``relevance_spread`` when that is higher."""
    best = max((h.relevance for h in ranked if h.relevance is not None), default=config.relevance_threshold)
    return max(config.relevance_threshold, best - config.relevance_spread)


def cleared(hit: Hit, config: RetrievalConfig, floor: float) -> bool:
    """Whether a passage may be shown: its relevance reaches ``floor`` (``relevance_floor``) when it has
    one, else its score reaches its namespace's threshold."""
    if hit.relevance is not None:
        return hit.relevance >= floor
    return hit.score >= config.threshold(hit.index.namespace)


def gate_score(cosine: float, coverage: float, config: RetrievalConfig) -> float:
    """The relevance score thresholds apply to (see the module docstring)."""
    return config.dense_share * cosine + (1.0 - config.dense_share) * coverage


def required_passages(ranked: Sequence[Hit], total: int, config: RetrievalConfig, narrowed: bool) -> int:
    """How many passages must clear their threshold for an answer: ``min_passages``, or fewer when
    the filters (the request's packs, applications or workspace, the actor's grant) narrowed the
    namespaces to a scope holding fewer documents than that.

    The scope's size is known only when every row of it is a candidate (fewer rows than
    ``candidates``); whole namespaces keep the calibrated minimum, so the off-topic behaviour
    measured on the calibration sets is unchanged.
    """
    if not narrowed or total >= config.candidates:
        return config.min_passages
    documents = {(h.index.namespace, h.payload.get("doc_id")) for h in ranked}
    return max(1, min(config.min_passages, len(documents)))


def gate(ranked: Sequence[Hit], total: int, top_k: int, config: RetrievalConfig,
         verified_only: bool = False, narrowed: bool = False, language: str | None = None,
         only_language: bool = False) -> RetrievalResult:
    """Keep the candidates (in fused order) that clear their namespace's threshold, and weigh them.

    ``verified_only``: only L1/L2 passages are returned (``refused`` when none clears the gate).
    ``narrowed``: the filters left rows of the namespaces out (see ``required_passages``).
    ``language``: the passages in that language first, before the minimum and ``top_k`` are applied,
    so the status and confidence describe what is returned; with ``only_language`` it is a filter like
    the others: the scope is that language's passages.
    """
    if language is not None and only_language:
        kept = [h for h in ranked if h.payload.get("lang") == language]
        narrowed = narrowed or len(kept) < len(ranked)
        if total < config.candidates:  # every row of the scope was a candidate: the filtered scope is exact
            total = len(kept)
        ranked = kept
    if not total or not ranked:
        return RetrievalResult(NEEDS_CLARIFICATION, [], 0.0, [CLARIFY_HINT],
                               reason=f"no candidate passage ({total} rows passed the filters)")
    floor = relevance_floor(ranked, config)
    above = [h for h in ranked if cleared(h, config, floor)]
    if language is not None and not only_language:
        above = sorted(above, key=lambda h: h.payload.get("lang") != language)  # stable: fused order kept
    weighed = {"candidates": total, "above_threshold": len(above), "ranked": list(ranked)}
    # The scope-aware minimum reads candidates' payloads: only worth it when the usual minimum is not met.
    needed = config.min_passages if len(above) >= config.min_passages else required_passages(
        ranked, total, config, narrowed)
    lone = _lone_answer(above, config) if len(above) < needed else None
    if len(above) < needed and lone is None:
        near = sorted(ranked, key=lambda h: -h.score)[:10]
        return RetrievalResult(NEEDS_CLARIFICATION, [], 0.0, _suggestions(near, config), **weighed,
                               reason=f"{len(above)} candidate(s) cleared their namespace's threshold, "
                                      f"{needed} needed")
    passages = above[:top_k]
    if verified_only:
        # Only verified sources reach this caller: the unverified passages are dropped, not mixed in.
        # Taken among the same top_k as for anyone, so the statuses (and the calibrated rates) stay.
        unverified = len(passages)
        passages = [h for h in passages if h.truth_level in VERIFIED_LEVELS]
        if not passages:  # the best sources are community tips or drafts: better no answer than an unverified one
            return RetrievalResult(REFUSED, [], 0.0, [], REFUSED_MESSAGE, **weighed,
                                   reason=f"the actor reads verified sources only and none of the {unverified} "
                                          f"passage(s) that cleared is {' or '.join(sorted(VERIFIED_LEVELS))}")
    confidence = _confidence(passages[: config.min_passages], config)
    status = SUCCESS if confidence >= config.low_confidence_below else LOW_CONFIDENCE
    comparison = "≥" if status == SUCCESS else "<"
    enough = f"({needed} needed)" if lone is None else f"({needed} needed, or one {lone})"
    return RetrievalResult(status, passages, confidence, **weighed,
                           reason=f"{len(above)} candidate(s) cleared their namespace's threshold "
                                  f"{enough}; confidence {confidence:.2f} {comparison} "
                                  f"{config.low_confidence_below:.2f}")


def _lone_answer(above: Sequence[Hit], config: RetrievalConfig) -> str | None:
    """Why one passage is enough, if it is: it cleared the relevance model's threshold (that judgement
    needs no company), or its score clears its threshold by ``lone_margin`` (one passage that plainly
    answers is worth answering with, however few others come close)."""
    relevant = next((h for h in above if h.relevance is not None), None)
    if relevant is not None:
        return f"relevant: {relevant.relevance:.3f} ≥ {config.relevance_threshold:.3f}"
    if config.lone_margin is None or not above:
        return None
    best = max(above, key=lambda h: h.score - config.threshold(h.index.namespace))
    threshold = config.threshold(best.index.namespace)
    return f"by {config.lone_margin:.2f}: {best.score:.2f} ≥ {threshold:.2f} + {config.lone_margin:.2f}" if (
        best.score >= threshold + config.lone_margin) else None


def _confidence(hits: Sequence[Hit], config: RetrievalConfig) -> float:
    """Mean over the leading passages of truth weight × how clearly each clears its threshold."""
    if not hits:
        return 0.0
    values = []
    for h in hits:
        strong = config.threshold(h.index.namespace) + config.strong_margin
        # A passage that cleared the relevance model's calibrated threshold counts fully.
        relevance = 1.0 if h.relevance is not None or strong <= 0 else min(1.0, max(0.0, h.score / strong))
        values.append(config.truth_weights.get(h.truth_level, UNKNOWN_TRUTH_WEIGHT) * relevance)
    return round(float(np.mean(values)), 4)


def _suggestions(near: Sequence[Hit], config: RetrievalConfig, limit: int = 3) -> list[str]:
    """A rephrasing hint, then the titles of the near misses among the documents the caller may read."""
    out = [CLARIFY_HINT]
    seen: set[str] = set()
    for h in near:
        title = h.payload.get("title")
        if title and title not in seen and h.score >= config.threshold(h.index.namespace) - config.suggestion_margin:
            seen.add(title)
            out.append(f"Votre question porte-t-elle sur « {title} » ?")
        if len(seen) >= limit:
            break
    return out
