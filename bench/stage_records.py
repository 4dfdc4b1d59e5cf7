"""JSON or pyarrow for the tabular stage records? Load time and peak RSS at 100k chunks.

Writes one ``document_chunks`` record of N synthetic chunks (the fields and typical sizes of real
ones: ~1 KB of text twice, a heading path, hashes) as JSON, Parquet and Arrow IPC, then loads each
in a fresh process — all rows as Python dicts, and only the three columns ``chunk_embeddings``
reads — and prints the seconds and the peak RSS above the interpreter's baseline.

    .venv/bin/python bench/stage_records.py              # 100k chunks
    .venv/bin/python bench/stage_records.py --chunks 20000
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

WORDS = ("apt dpkg kernel module network interface package mirror backup firewall service daemon "
         "configuration user group permission file system partition volume log rotate").split()
EMBED_COLUMNS = ["text_hash", "embed_text", "n_tokens"]


def synthetic_chunks(n: int) -> list[dict]:
    rng = random.Random(13)
    rows = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=150))
        rows.append({
            "chunk_id": f"{i:064x}", "doc_id": f"doc-{i // 20}", "doc_version": f"{i // 20:016x}",
            "namespace": "knowledge:handbook", "source_path": f"handbook/page-{i // 20}.html",
            "title": f"Page {i // 20}", "heading_path": ["Chapter", f"Section {i % 20}"], "location": f"§{i % 20}",
            "kind": "prose", "text": text, "embed_text": f"Page {i // 20} > Section {i % 20}\n{text}",
            "text_hash": f"{i:064x}"[::-1], "n_tokens": 180 + i % 70, "truth_level": "L2", "lang": "en",
            "updated": None,
        })
    return rows


LOADERS = {
    "json (all rows)": "import json; rows = json.loads(open(PATH, encoding='utf-8').read())['chunks']",
    "parquet (all rows)": "import pyarrow.parquet as pq; rows = pq.read_table(PATH).to_pylist()",
    "arrow ipc (all rows)": "import pyarrow.feather as f; rows = f.read_table(PATH, memory_map=True).to_pylist()",
    "parquet (3 columns)": f"import pyarrow.parquet as pq; rows = pq.read_table(PATH, columns={EMBED_COLUMNS})"
                           ".to_pylist()",
    "arrow ipc (3 columns)": f"import pyarrow.feather as f; rows = f.read_table(PATH, columns={EMBED_COLUMNS}, "
                             "memory_map=True).to_pylist()",
}
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (Linux keeps it across fork/exec).
PROBE = """
import re, sys, time
import pyarrow, pyarrow.parquet, pyarrow.feather, json
PATH = sys.argv[1]
def peak_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
base = peak_kb()
started = time.perf_counter()
{load}
seconds = time.perf_counter() - started
print(seconds, (peak_kb() - base) / 1024, len(rows))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args()
    rows = synthetic_chunks(args.chunks)
    with tempfile.TemporaryDirectory(prefix="stage-records-") as tmp:
        paths = {"json": Path(tmp) / "chunks.json", "parquet": Path(tmp) / "chunks.parquet",
                 "arrow ipc": Path(tmp) / "chunks.arrow"}
        writes = {}
        started = time.perf_counter()
        paths["json"].write_text(json.dumps({"chunks": rows}, ensure_ascii=False), encoding="utf-8")
        writes["json"] = time.perf_counter() - started
        started = time.perf_counter()
        table = pa.Table.from_pylist(rows)
        pq.write_table(table, paths["parquet"])
        writes["parquet"] = time.perf_counter() - started
        started = time.perf_counter()
        feather.write_feather(pa.Table.from_pylist(rows), paths["arrow ipc"], compression="uncompressed")
        writes["arrow ipc"] = time.perf_counter() - started
        del rows, table
        print(f"{args.chunks} chunks")
        print(f"{'format':24} {'size MB':>8} {'write s':>8} {'load s':>7} {'load RSS MB':>12}")
        for name, load in LOADERS.items():
            kind = name.split(" (")[0]
            out = subprocess.run([sys.executable, "-c", PROBE.format(load=load), str(paths[kind])],
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"{name:24} {paths[kind].stat().st_size / 1e6:8.1f} {writes[kind]:8.2f} {float(out[0]):7.2f} "
                  f"{float(out[1]):12.0f}")


if __name__ == "__main__":
    main()
