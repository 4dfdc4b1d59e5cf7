"""Retrieval figures of the versions @latest serves, on each namespace's golden set.

The same measurement as the build's ``evaluation`` check (knowledge_plane.build.evaluation.score_index: the query
service's engine, gate and thresholds), over what is published in a data dir, so a retrieval
change can be compared before and after without building twice:

    KNOWLEDGE_DATA_DIR=/tmp/kp .venv/bin/knowledge build        # once
    KNOWLEDGE_DATA_DIR=/tmp/kp .venv/bin/python bench/retrieval_eval.py [--namespace NS]… [--misses]

``--set NS=FILE`` scores a question file in the golden format against NS instead (the public-docs
sets of ``bench/retrieval_sets/``, with their tuning and held-out splits). The version's BM25 is
recomputed from its payloads with the current code, so a lexical change is measured without a
rebuild. Prints one row per set (questions, off-topic questions and the five figures) and the
question-weighted mean of every figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_plane.build.evaluation import (  # noqa: E402
    FIGURES,
    CachedQuestions,
    golden_path,
    load_golden,
    score_index,
)
from knowledge_plane.build.sources import discover_namespaces  # noqa: E402
from knowledge_plane.build.stages import BuildContext  # noqa: E402
from knowledge_plane.serving.config import retrieval_config  # noqa: E402
from knowledge_plane.serving.query_engine import QueryEngine  # noqa: E402
from knowledge_plane.serving.retrieval import LoadedIndex  # noqa: E402
from knowledge_plane.settings import Settings  # noqa: E402
from knowledge_plane.storage.index_store import read_version  # noqa: E402
from knowledge_plane.storage.registry import LATEST  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", action="append", default=[])
    parser.add_argument("--set", action="append", default=[], metavar="NS=FILE",
                        help="score a question file (golden format) against namespace NS")
    parser.add_argument("--newest", action="store_true",
                        help="score the newest version built, promoted or not (bench corpora that fail a check)")
    parser.add_argument("--misses", action="store_true", help="list the questions each namespace missed")
    args = parser.parse_args()
    settings = Settings()
    ctx = BuildContext(settings)
    config = retrieval_config(settings.service)
    rows, weighted, total = [], dict.fromkeys(FIGURES, 0.0), 0
    if args.set:
        sets = [(ns, Path(file)) for ns, _, file in (item.partition("=") for item in args.set)]
    else:
        sets = [(ns, golden_path(ctx, ns)) for ns in args.namespace or discover_namespaces(settings)]
    for namespace, path in sets:
        versions = ctx.registry.versions(namespace)
        latest = versions[0].version if args.newest and versions else (
            ctx.registry.aliases(namespace).get(namespace, {}).get(LATEST))
        if path is None or latest is None:
            continue
        golden = load_golden(path)
        questions = CachedQuestions(ctx, [q.question for q in golden.questions] + list(golden.off_topic))
        stored = read_version(Path(ctx.registry.version(namespace, latest).path))
        engine = QueryEngine(questions, config, settings.tenant_id, relevance=questions)
        result = score_index(LoadedIndex.from_version(stored), golden, engine)
        rows.append((path.stem if args.set else namespace, len(golden.questions), len(golden.off_topic), result))
        for name in FIGURES:
            weighted[name] += result["figures"][name] * len(golden.questions)
        total += len(golden.questions)
    if not rows:
        print("no namespace with both a golden set and an @latest version", file=sys.stderr)
        return 1
    print(f"{'namespace':<22}{'on':>4}{'off':>5}" + "".join(f"{n:>17}" for n in FIGURES))
    for namespace, on, off, result in rows:
        print(f"{namespace:<22}{on:>4}{off:>5}" + "".join(f"{result['figures'][n]:>17.2f}" for n in FIGURES))
    print(f"{'mean (per question)':<22}{total:>4}{'':>5}" + "".join(f"{weighted[n] / total:>17.2f}" for n in FIGURES))
    if args.misses:
        for namespace, _, _, result in rows:
            for miss in result["misses"]:
                print(f"{namespace}: {miss['status']:<20} {miss['question']}  (got {', '.join(miss['got']) or '-'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
