"""Screening real documentation nobody here wrote: what it quarantines, and how fast it scans.

Each page goes through the build's own parser (``parse_document``, Docling for HTML), which screens
it (``knowledge_plane.build.screening``) for secrets and, in a ``knowledge:*`` namespace, personal data. Prints, per
package, the quarantined pages with their reason, and the screening time alone in seconds per MB
of page (HTML) and per MB of extracted text.

    .venv/bin/python bench/screening.py                      # the three packages, ~10 min on 2 cores
    .venv/bin/python bench/screening.py --limit 20 --json /tmp/screening.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import knowledge_plane.build.parsing
from knowledge_plane.domain.ids import sha256_hex
from knowledge_plane.domain.quarantine import QuarantineError

PACKAGES = {  # smallest first, so a long run has figures early
    "debref": ("/usr/share/debian-reference", "*.fr.html"),
    "handbook": ("/usr/share/doc/debian-handbook/html/en-US", "*.html"),
    "pydocs": ("/usr/share/doc/python3.11/html/library", "*.html"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="pages per package (default: all)")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--only", nargs="+", default=[], help="these page names only (e.g. a re-check)")
    args = parser.parse_args()
    screened = {"seconds": 0.0, "text_bytes": 0}
    original = knowledge_plane.build.parsing.screen_document

    def timed(doc, **kwargs):  # the screening step alone, as the build calls it
        started = time.perf_counter()
        try:
            return original(doc, **kwargs)
        finally:
            screened["seconds"] += time.perf_counter() - started
            screened["text_bytes"] += len(doc.text.encode("utf-8"))

    knowledge_plane.build.parsing.screen_document = timed
    report = {}
    for name, (folder, pattern) in PACKAGES.items():
        pages = [p for p in sorted(Path(folder).glob(pattern)) if not args.only or p.name in args.only]
        pages = pages[: args.limit or None]
        if not pages and args.only:
            continue
        if not pages:
            sys.exit(f"{folder} is empty: apt-get install -y python3.11-doc debian-handbook debian-reference-fr")
        screened.update(seconds=0.0, text_bytes=0)
        quarantined, page_bytes, started = [], 0, time.perf_counter()
        for page in pages:
            data = page.read_bytes()
            page_bytes += len(data)
            try:
                knowledge_plane.build.parsing.parse_document(
                    data,
                    namespace=f"knowledge:{name}",
                    source_path=f"{name}/{page.name}",
                    content_hash=sha256_hex(data),
                )
            except QuarantineError as exc:
                quarantined.append({"page": page.name, "reason": exc.reason, "detail": exc.detail})
        report[name] = {
            "pages": len(pages),
            "page_mb": round(page_bytes / 1e6, 2),
            "text_mb": round(screened["text_bytes"] / 1e6, 2),
            "parse_and_screen_seconds": round(time.perf_counter() - started, 1),
            "screen_seconds": round(screened["seconds"], 2),
            "screen_seconds_per_page_mb": round(screened["seconds"] / (page_bytes / 1e6), 3),
            "screen_seconds_per_text_mb": round(screened["seconds"] / max(screened["text_bytes"] / 1e6, 1e-9), 3),
            "quarantined": quarantined,
        }
        figures = report[name]
        print(
            f"{name}: {figures['pages']} pages, {figures['page_mb']} MB of HTML ({figures['text_mb']} MB of text); "
            f"screening {figures['screen_seconds']} s = {figures['screen_seconds_per_page_mb']} s/MB of HTML, "
            f"{figures['screen_seconds_per_text_mb']} s/MB of text; {len(quarantined)} quarantined",
            flush=True,
        )
        for item in quarantined:
            print(f"    {item['page']}: {item['reason']}: {item['detail'][:300]}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
