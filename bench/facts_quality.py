"""Quality of fact extraction (issue 12): prints figures, never a test.

1. The labelled French set of tests/facts/data/ — sentences from contracts, policies, support
   pages and meeting notes, and document pairs typed CONTRADICTS / OVERRIDES / DUPLICATES /
   OUTDATED or "no conflict" — scored separately on the ``dev`` part (what the extractor was tuned
   on) and the ``heldout`` part (never tuned on): precision and recall of (subject, predicate,
   value, unit) and of value + unit, validity start, conflict-typing accuracy.
   Targets: value + unit precision >= 0.95, recall >= 0.85; conflict typing 100 %.
2. Real documentation nobody here wrote, read through the project's parser: Debian Reference (fr),
   the Debian Administrator's Handbook (fr-FR) and Python's library reference: documents,
   facts, documents/s and facts/s of rule extraction, and how many facts look like code or a
   template placeholder (target 0), with samples to check by eye.

    .venv/bin/python bench/facts_quality.py                  # labelled set + every real page
    .venv/bin/python bench/facts_quality.py --real-limit 20  # at most 20 pages per corpus
    .venv/bin/python bench/facts_quality.py --no-real --misses
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_plane.build.parsing import QuarantineError, parse_document  # noqa: E402
from knowledge_plane.facts.evaluation import load, score_pairs, score_sentences  # noqa: E402
from knowledge_plane.facts.extract import DocumentContext, extract_documents  # noqa: E402
from knowledge_plane.facts.nlp import french_pipeline  # noqa: E402

CORPORA = {
    "debian-reference-fr": ("/usr/share/debian-reference", "*.fr.html"),
    "debian-handbook-fr": ("/usr/share/doc/debian-handbook/html/fr-FR", "*.html"),
    "python3.11-library": ("/usr/share/doc/python3.11/html/library", "*.html"),
}
# What a value never is: code, a template placeholder, an assignment, a URL.
_GARBAGE = re.compile(r"[{}`=$<>]|\b\w+\(|https?://|\[\s*'")


def labelled(split: str, misses: bool) -> None:
    report = score_sentences(load("sentences.jsonl", split))
    pairs = score_pairs(load("pairs.jsonl", split))
    vu, full = report.value_unit, report.full
    print(f"[{split}] {report.sentences} sentences, {vu.expected} labelled facts, {report.facts} extracted")
    print(f"  value+unit              precision {vu.precision:.3f}  recall {vu.recall:.3f}")
    print(f"  subject+predicate+value precision {full.precision:.3f}  recall {full.recall:.3f}")
    print(f"  valid_from right on {report.valid_from_right}/{vu.expected} labelled facts (value+unit found)")
    print(f"  conflict typing         {pairs.right}/{pairs.total} pairs = {pairs.accuracy:.1%}")
    print(f"  rate                    {report.sentences / report.seconds:.1f} documents/s, "
          f"{report.facts / report.seconds:.1f} facts/s (one batch, model loaded)")
    if misses:
        for line in report.misses + pairs.wrong:
            print("  - " + line)


def real(name: str, root: str, pattern: str, limit: int | None, samples: int) -> None:
    paths = sorted(Path(root).glob(pattern))[:limit]
    if not paths:
        print(f"[{name}] not installed ({root})")
        return
    documents, quarantined = [], 0
    parse_started = time.perf_counter()
    for path in paths:
        data = path.read_bytes()
        try:
            doc = parse_document(data, namespace=f"knowledge:{name}", source_path=path.name,
                                 content_hash=hashlib.sha256(data).hexdigest())
        except QuarantineError:
            quarantined += 1
            continue
        documents.append(doc.to_dict())
    parse_seconds = time.perf_counter() - parse_started
    contexts = [DocumentContext("bench", d) for d in documents]
    started = time.perf_counter()
    results = extract_documents(contexts)
    seconds = time.perf_counter() - started
    facts = [f for r in results for f in r.facts]
    garbage = [f for f in facts if _GARBAGE.search(f.object) or _GARBAGE.search(f.subject)
               or _GARBAGE.search(f.predicate)]
    by_method: dict[str, int] = {}
    for fact in facts:
        by_method[fact.extraction_method] = by_method.get(fact.extraction_method, 0) + 1
    print(f"[{name}] {len(paths)} pages ({quarantined} quarantined, parsed in {parse_seconds:.0f} s): "
          f"{len(facts)} facts {by_method}, {len(garbage)} code/placeholder; "
          f"{len(documents) / seconds:.1f} documents/s, {len(facts) / seconds:.1f} facts/s")
    for fact in garbage[:samples]:
        print(f"  GARBAGE {fact.source_document}: {fact.subject} | {fact.predicate} | {fact.object}")
    step = max(1, len(facts) // samples) if facts else 1
    for fact in facts[::step][:samples]:
        print(f"  {fact.source_document[:40]}: {fact.subject} | {fact.predicate} | {fact.object} "
              f"({fact.extraction_method}, {fact.confidence})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-real", action="store_true", help="only the labelled set")
    parser.add_argument("--real-limit", type=int, default=None, help="pages per real corpus")
    parser.add_argument("--samples", type=int, default=8, help="facts printed per real corpus")
    parser.add_argument("--misses", action="store_true", help="print every miss of the labelled set")
    args = parser.parse_args()
    started = time.perf_counter()
    french_pipeline()
    print(f"spaCy fr_core_news_md loaded in {time.perf_counter() - started:.1f} s (once per process)")
    for split in ("dev", "heldout", "all"):
        labelled(split, args.misses and split != "all")
    if not args.no_real:
        for name, (root, pattern) in CORPORA.items():
            real(name, root, pattern, args.real_limit, args.samples)


if __name__ == "__main__":
    main()
