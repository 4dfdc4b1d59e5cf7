"""What the data-quality suites (Great Expectations) add to a build, on the sample corpus and the Debian handbook.

The sample corpus and the Debian Administrator's Handbook in English (``debian-handbook``, one
namespace ``knowledge:handbook``) are built by ``knowledge build --json`` in its own process, then
rebuilt with no change. Every version's manifest holds what its ``data_quality`` check took
(``data_quality.seconds``: the first namespace checked pays Great Expectations' import too), so
the figures come from the real build. Prints the import alone (a fresh process), one row per
namespace (chunks, facts, expectations, check seconds) and the share of the full build's time;
the no-change rebuild reuses each version's stored result, so it should not import GX at all.

    apt-get install -y debian-handbook
    .venv/bin/python bench/data_quality.py                # the whole handbook (127 pages)
    .venv/bin/python bench/data_quality.py --pages 30     # its first 30 pages
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HANDBOOK = Path("/usr/share/doc/debian-handbook/html/en-US")


def run(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=0, help="handbook pages (default: all)")
    args = parser.parse_args()
    pages = sorted(HANDBOOK.glob("*.html"))[: args.pages or None]
    if not pages:
        sys.exit(f"{HANDBOOK} is empty: apt-get install -y debian-handbook")
    root = Path(tempfile.mkdtemp(prefix="data-quality-bench-"))
    try:
        corpus = root / "knowledge"
        shutil.copytree(PROJECT_ROOT / "knowledge", corpus)
        (corpus / "handbook").mkdir()
        for page in pages:
            shutil.copyfile(page, corpus / "handbook" / page.name)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "KNOWLEDGE_CORPUS_DIR": str(corpus),
               "KNOWLEDGE_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "data" / "dagster"),
               "PYTHONPATH": str(PROJECT_ROOT)}
        env.pop("KNOWLEDGE_REGISTRY_URL", None)
        probe = "import time; t = time.perf_counter(); import great_expectations; print(time.perf_counter() - t)"
        imported, _ = run(env, "-c", probe)
        full, full_seconds = run(env, "-m", "knowledge_plane.cli.main", "build", "--json")
        if not full.stdout:
            sys.exit(full.stderr[-3000:])
        noop, noop_seconds = run(env, "-m", "knowledge_plane.cli.main", "build", "--json")
        manifests = [m for p in (root / "data").rglob("manifest.json")
                     if "checks" in (m := json.loads(p.read_text(encoding="utf-8")))]
        print(f"handbook pages: {len(pages)}; Great Expectations import alone: {float(imported.stdout):.2f} s")
        print(f"{'namespace':22} {'chunks':>7} {'facts':>6} {'expect.':>7} {'check s':>8}  result")
        total = 0.0
        for manifest in sorted(manifests, key=lambda m: m["namespace"]):
            quality = manifest.get("data_quality") or {}
            check = next(c for c in manifest["checks"] if c["name"] == "data_quality")
            total += quality.get("seconds", 0.0)
            print(f"{manifest['namespace']:22} {quality['rows']['chunks']:>7} {quality['rows']['facts']:>6} "
                  f"{quality['expectations']:>7} {quality['seconds']:>8.2f}  {check['detail'][:90]}")
        print(f"data_quality in the full build: {total:.1f} s of {full_seconds:.1f} s "
              f"({100 * total / full_seconds:.1f} %, exit {full.returncode}); "
              f"no-change rebuild {noop_seconds:.1f} s (exit {noop.returncode}; every result reused, no GX import)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
