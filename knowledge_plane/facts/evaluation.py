"""Scoring the rule extractor against labelled French sentences and conflict-typed document pairs.

The labelled set lives in tests/facts/data/ (``sentences.jsonl``: one sentence and the facts a
reader takes from it; ``pairs.jsonl``: two documents and the relations expected between their
facts). Used by bench/facts_quality.py, which prints the figures, and by the tests, which hold the
extractor to its targets.

Matching: value + unit are compared exactly (after normalisation, within 1e-9). Subject and
predicate are compared on their canonical ontology key first; failing that, on content words
(folded, lightly stemmed): one side's words must all appear in the other's, so "délai de
rétractation" matches "délai légal de rétractation" but "délai" alone never matches "taux".
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge_plane.facts.config import load_ontology, load_rules
from knowledge_plane.facts.conflicts import classify
from knowledge_plane.facts.extract import DocumentContext, extract_documents
from knowledge_plane.facts.match import _same, tokens
from knowledge_plane.facts.model import APPROVED, Fact

DATA = Path(__file__).resolve().parents[2] / "tests" / "facts" / "data"
DEFAULT_DAY = "2024-01-01"


def load(name: str, split: str | None = None, data: Path = DATA) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (data / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split in (None, "all", r["split"])]


def document(doc_id: str, text: str, *, title: str | None = None, valid_from: str | None = DEFAULT_DAY,
             valid_until: str | None = None, facts: list[dict[str, Any]] | None = None,
             namespace: str = "knowledge:eval") -> dict[str, Any]:
    """A parsed-document record holding one prose (or table) section."""
    meta: dict[str, Any] = {"valid_from": valid_from}
    if valid_until:
        meta["valid_until"] = valid_until
    if facts:
        meta["facts"] = facts
    kind = "table" if text.lstrip().startswith("|") else "prose"
    return {"doc_id": doc_id, "doc_version": "v1", "content_hash": f"{doc_id}-hash", "namespace": namespace,
            "source_path": f"{doc_id}.md", "title": title or doc_id, "updated": valid_from, "meta": meta,
            "sections": [{"heading_path": [], "text": text, "location": "§", "kind": kind}]}


def _canonical(text: str, kind: str) -> str:
    ontology = load_ontology()
    return (ontology.subject(text) if kind == "subject" else ontology.predicate(text)).key


def _words_match(label: str, found: str, kind: str) -> bool:
    if _canonical(label, kind) == _canonical(found, kind):
        return True
    a, b = tokens(label), tokens(found)
    if not a or not b:
        return False
    covered = all(any(_same(x, y) for y in b) for x in a) or all(any(_same(y, x) for x in a) for y in b)
    return covered


def _same_value(label: list[Any], fact: Fact) -> bool:
    return isinstance(fact.value, float) and abs(fact.value - float(label[2])) < 1e-9 and fact.unit == label[3]


@dataclass
class Score:
    """Counts of one metric: true positives, extracted, labelled."""

    tp: int = 0
    found: int = 0
    expected: int = 0

    @property
    def precision(self) -> float:
        return self.tp / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.expected if self.expected else 1.0


@dataclass
class ExtractionReport:
    value_unit: Score = field(default_factory=Score)
    full: Score = field(default_factory=Score)
    valid_from_right: int = 0
    sentences: int = 0
    facts: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)


def _greedy(labels: list[list[Any]], facts: list[Fact], accept) -> int:
    left = list(facts)
    hits = 0
    for label in labels:
        hit = next((f for f in left if accept(label, f)), None)
        if hit is not None:
            left.remove(hit)
            hits += 1
    return hits


def score_sentences(rows: Iterable[dict[str, Any]]) -> ExtractionReport:
    """Extract every labelled sentence (one document each, parsed in one batch) and score it."""
    rows = list(rows)
    ctxs = [DocumentContext("eval", document(r["id"], r["text"], title=r["title"])) for r in rows]
    started = time.perf_counter()
    results = extract_documents(ctxs)
    report = ExtractionReport(sentences=len(rows), seconds=time.perf_counter() - started)
    for row, result in zip(rows, results, strict=True):
        facts = result.facts
        labels = row["facts"]
        report.facts += len(facts)
        vu = _greedy(labels, facts, _same_value)

        def full_match(label: list[Any], fact: Fact) -> bool:
            return (_same_value(label, fact) and _words_match(label[0], fact.subject, "subject")
                    and _words_match(label[1], fact.predicate, "predicate"))

        full = _greedy(labels, facts, full_match)
        for score, tp in ((report.value_unit, vu), (report.full, full)):
            score.tp += tp
            score.found += len(facts)
            score.expected += len(labels)
        for label in labels:
            want = dt.date.fromisoformat(label[4] or DEFAULT_DAY)
            if any(_same_value(label, f) and f.valid_from == want for f in facts):
                report.valid_from_right += 1
        if full < len(labels) or full < len(facts):
            got = [(f.subject, f.predicate, f.value, f.unit) for f in facts]
            report.misses.append(f"{row['id']}: {row['text']}\n    labelled {labels}\n    extracted {got}")
    return report


@dataclass
class PairReport:
    right: int = 0
    total: int = 0
    wrong: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 1.0


def score_pairs(rows: Iterable[dict[str, Any]]) -> PairReport:
    """Type the relations between the facts of each labelled pair of documents."""
    rules = load_rules()
    report = PairReport()
    for row in rows:
        docs = [(side, row[side]) for side in ("a", "b") if side in row]
        # both documents are about the pair's subject (two versions of one policy, say)
        title = row.get("title", "Conditions générales")
        ctxs = [DocumentContext("eval", document(f"{row['id']}-{side}", spec["text"], title=spec.get("title", title),
                                                  valid_from=spec.get("valid_from"),
                                                  valid_until=spec.get("valid_until"), facts=spec.get("facts")))
                for side, spec in docs]
        facts: list[Fact] = []
        for (side, _), result in zip(docs, extract_documents(ctxs), strict=True):
            for fact in result.facts:
                if row.get("approve") == side:
                    fact.status = APPROVED
                facts.append(fact)
        kinds = Counter(r.kind for i, a in enumerate(facts) for b in facts[i + 1:] for r in classify(a, b, rules))
        got = sorted(kinds)
        report.total += 1
        if got == sorted(row["expected"]):
            report.right += 1
        else:
            described = [(f.subject, f.predicate, f.value, f.unit, str(f.valid_from)) for f in facts]
            report.wrong.append(f"{row['id']} ({row['why']}): expected {row['expected']}, got {got}; facts {described}")
    return report
