"""Build whole real documentation packages beside the sample corpus, as a new user would.

Python's library reference (``python3.11-doc``), the Debian Administrator's Handbook in English
(``debian-handbook``) and the Debian reference in French (``debian-reference-fr``) each become a
namespace next to the sample corpus; ``knowledge build --json`` runs in its own process, twice.
Prints per namespace: promoted or held back (and why), documents, chunks, quarantined pages with
their reason, facts and facts that look like code or a placeholder; the whole-process times of
the full build and of the no-op rebuild. ``tests/build/test_real_corpora.py`` does the same on a subset.

    apt-get install -y python3.11-doc debian-handbook debian-reference-fr
    .venv/bin/python bench/real_corpora.py                 # whole packages: about an hour on 2 cores
    .venv/bin/python bench/real_corpora.py --pages 40      # the first 40 pages of each
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "pydocs": ("/usr/share/doc/python3.11/html/library", "*.html"),
    "handbook": ("/usr/share/doc/debian-handbook/html/en-US", "*.html"),
    "reference-fr": ("/usr/share/debian-reference", "*.fr.html"),
}
CODE_OR_PLACEHOLDER = re.compile(r"[{}`]|\$[A-Za-z_{(]|\w\s*==?\s*\S|https?://|\[\s*['\"]")


def knowledge(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "knowledge_plane.cli.main", *args], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=0, help="pages per package (default: all)")
    parser.add_argument("--keep", type=Path, help="build in this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="real-corpora-"))
    corpus = root / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", corpus, dirs_exist_ok=True)
    for folder, (directory, pattern) in PACKAGES.items():
        pages = sorted(Path(directory).glob(pattern))[: args.pages or None]
        if not pages:
            sys.exit(f"{directory} is empty: apt-get install -y python3.11-doc debian-handbook debian-reference-fr")
        (corpus / folder).mkdir(exist_ok=True)
        for page in pages:
            shutil.copyfile(page, corpus / folder / page.name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KNOWLEDGE_CORPUS_DIR": str(corpus),
           "KNOWLEDGE_DATA_DIR": str(root / "data"), "DAGSTER_HOME": str(root / "data" / "dagster")}
    env.pop("KNOWLEDGE_REGISTRY_URL", None)
    first, full_seconds = knowledge(env, "build", "--json")
    second, noop_seconds = knowledge(env, "build", "--json")
    facts_run, _ = knowledge(env, "facts", "list", "--json")
    if not first.stdout:
        sys.exit(first.stderr[-3000:])
    facts = json.loads(facts_run.stdout or "[]")
    facts = facts if isinstance(facts, list) else facts.get("facts", [])
    print(f"full build {full_seconds:.1f} s (exit {first.returncode}), no-op rebuild {noop_seconds:.1f} s "
          f"(exit {second.returncode})")
    header = f"{'namespace':26} {'promoted':9} {'docs':>5} {'chunks':>7} {'facts':>6} {'code-like':>9}"
    print(header + "  held back / quarantined")
    for report in json.loads(first.stdout)["namespaces"]:
        namespace = report["namespace"]
        own = [f for f in facts if f.get("namespace") == namespace]
        garbage = [f for f in own if CODE_OR_PLACEHOLDER.search(f"{f.get('object')} {f.get('value')}")]
        print(f"{namespace:26} {str(report['promoted']):9} {report['documents']:>5} {report['chunks']:>7} "
              f"{len(own):>6} {len(garbage):>9}  {report['reason'] if report.get('held_back') else ''}")
        for q in report["quarantined"]:
            print(f"{'':28}quarantined {q['path']}: {q['reason']}: {q['detail'][:140]}")
    embedded_again = sum(r["chunks_embedded"] for r in json.loads(second.stdout)["namespaces"])
    print(f"no-op rebuild embedded {embedded_again} chunks")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
