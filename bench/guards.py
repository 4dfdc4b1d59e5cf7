"""Guard benchmark (issue 11): precision and recall of knowledge_plane.serving.guards on a labelled question set.

The set, ``tests/query/data/guards_labelled.jsonl``, holds French and English questions labelled
``personal_data`` (→ the service redirects, nothing searched) and ``injection`` (→ flagged and
stripped): part numbers (Bosch ``0986494524`` and friends), order and invoice numbers, phone
numbers in French and international formats, e-mails, IBANs, card numbers, names, prompt-injection
variants and innocent questions. Rows with ``"split": "holdout"`` were written before the guards
were tuned and were not looked at while tuning: their figures are reported apart.

    .venv/bin/python bench/guards.py [--set FILE] [--misses] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge_plane.serving.guards import find_personal_data, scan_injection  # noqa: E402

DEFAULT_SET = ROOT / "tests" / "query" / "data" / "guards_labelled.jsonl"
TASKS = {
    "personal_data": lambda text: bool(find_personal_data(text)),
    "injection": lambda text: scan_injection(text).flagged,
}


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure(rows: list[dict]) -> dict[str, dict]:
    """{task: {tp, fp, fn, tn, precision, recall, misses}} over ``rows``."""
    figures = {}
    for task, predict in TASKS.items():
        counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
        misses = []
        for row in rows:
            predicted, actual = predict(row["text"]), bool(row[task])
            key = ("t" if predicted == actual else "f") + ("p" if predicted else "n")
            counts[key] += 1
            if predicted != actual:
                misses.append({"text": row["text"], "expected": actual, "note": row.get("note", "")})
        flagged, positives = counts["tp"] + counts["fp"], counts["tp"] + counts["fn"]
        figures[task] = {**counts, "precision": counts["tp"] / flagged if flagged else 1.0,
                         "recall": counts["tp"] / positives if positives else 1.0, "misses": misses}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="the labelled JSONL file")
    parser.add_argument("--misses", action="store_true", help="list the misclassified questions of the tuning split")
    parser.add_argument("--holdout-misses", action="store_true",
                        help="also list the held-out ones (read them only to report, never to tune)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    rows = load(args.set)
    report = {}
    print(f"{'split':<8} {'task':<14} {'n':>4} {'pos':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
    for split in ("tune", "holdout", "all"):
        selected = [r for r in rows if split == "all" or r["split"] == split]
        report[split] = figures = measure(selected)
        for task, f in figures.items():
            print(f"{split:<8} {task:<14} {len(selected):>4} {f['tp'] + f['fn']:>4} {f['tp']:>4} {f['fp']:>4} "
                  f"{f['fn']:>4} {f['precision']:>9.2f} {f['recall']:>7.2f}")
    if args.misses or args.holdout_misses:
        for split in ("tune", "holdout") if args.holdout_misses else ("tune",):
            for task, f in report[split].items():
                for miss in f["misses"]:
                    kind = "missed" if miss["expected"] else "false alarm"
                    print(f"[{split}] {task} {kind}: {miss['text']!r} ({miss['note']})")
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
