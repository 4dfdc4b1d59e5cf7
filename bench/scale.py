"""Scale-out benchmark (issue 20): the embedding stage's throughput per worker on a Ray cluster, from 1
to 2 workers, and the cluster path's overhead against the in-process path, on the same real chunks.
Prints figures (JSON), never a test; docs/scaling.md extrapolates from them.

    PYTHONPATH=. .venv/bin/python bench/scale.py [--pages 20] [--address HOST:PORT --workers 1,2,4]

The chunks are those the build makes of ``--pages`` pages of Debian's python3.11-doc library reference
(parsed and chunked by the stages, once, before anything is timed). Then, on those distinct texts:

- *in process*: ``Embedder.encode`` with 1 thread (one worker's share of a CPU) and with 2 threads
  (the build process's default, ``BUILD_THREADS``), model loaded before timing;
- *Ray*: ``embed_on_ray`` (what ``KNOWLEDGE_EXECUTOR=ray`` runs) on a local Ray instance of 2 CPUs
  started here (or the cluster at ``--address``, whose nodes run this checkout), with pools of
  ``--workers`` actors (1 then 2) of one CPU and one thread each, timed end to end: actor start,
  model load per actor, Arrow transfer and the vectors' return to the driver included, since a
  build pays them all. Each pool runs twice (``warm_seconds``, the second: Ray Data starts new
  actors per dataset, so it only spares the cluster's own start).

Each figure carries the load average: the machine is shared (2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from bench.build import python_docs_corpus, seed_model_export  # noqa: E402
from knowledge_plane.build import stages as build  # noqa: E402
from knowledge_plane.build.records import ChunksRecord  # noqa: E402
from knowledge_plane.serving.embedding import Embedder  # noqa: E402
from knowledge_plane.settings import Settings  # noqa: E402


def chunk_texts(pages: int, work: Path) -> tuple[list[str], Path]:
    """The distinct embed texts of ``pages`` python3.11-doc pages, and a cache dir holding the ONNX export."""
    corpus = python_docs_corpus(pages)
    root, data = corpus.materialize(work), work / "data"
    settings = Settings.from_environ({}, paths={"data_dir": data, "corpus_dir": root},
                                     registry={"url": f"sqlite:///{data / 'registry.db'}"})
    seed_model_export(settings.paths.cache_dir)
    ctx = build.BuildContext(settings, run_id="bench-scale")
    texts: dict[str, str] = {}
    for ns in corpus.namespaces:
        build.raw_documents(ctx, ns), build.parsed_documents(ctx, ns), build.document_chunks(ctx, ns)
        texts.update((c["text_hash"], c["embed_text"]) for c in ctx.stages.read(ChunksRecord, ns).chunks)
    return list(texts.values()), settings.paths.cache_dir


def figure(chunks: int, seconds: float, **extra: object) -> dict[str, object]:
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_second": round(chunks / seconds, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()], **extra}


def in_process(texts: list[str], cache_dir: Path, threads: int) -> tuple[dict[str, object], np.ndarray]:
    embedder = Embedder(cache_dir=cache_dir, threads=threads)
    embedder.load()
    embedder.encode(texts[:32])  # warm-up: ONNX Runtime's first run allocates its arenas
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    return figure(len(texts), time.perf_counter() - started, threads=threads), vectors


def on_ray(texts: list[str], cache_dir: Path, workers: int, reference: np.ndarray,
           address: str | None) -> dict[str, object]:
    from knowledge_plane.build.distributed import embed_on_ray, misses_table

    hashes = [f"{i:08d}" for i in range(len(texts))]
    table = misses_table(hashes, dict(zip(hashes, texts, strict=True)))
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        got: dict[str, np.ndarray] = {}
        for batch_hashes, vectors in embed_on_ray(table, address=address, workers=workers, backend="onnx",
                                                  cache_dir=cache_dir, batch_size=32):
            got.update(zip(batch_hashes, vectors, strict=True))
        runs.append(time.perf_counter() - started)
    vectors = np.stack([got[h] for h in hashes])
    cosine = float(np.einsum("ij,ij->i", vectors, reference).min())
    per_worker = len(texts) / runs[1] / workers
    return figure(len(texts), runs[0], workers=workers, warm_seconds=round(runs[1], 2),
                  warm_chunks_per_second_per_worker=round(per_worker, 1), min_cosine_to_in_process=round(cosine, 6))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="python3.11-doc pages to chunk (default 20)")
    parser.add_argument("--address", help="a running Ray cluster (host:port); default: a local instance of 2 CPUs")
    parser.add_argument("--workers", default="1,2", help="actor pool sizes to measure (default 1,2)")
    args = parser.parse_args(argv)
    pools = [int(n) for n in args.workers.split(",")]
    import ray

    report: dict[str, object] = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="kp-bench-scale-") as tmp:
        texts, cache_dir = chunk_texts(args.pages, Path(tmp))
        report["pages"], report["distinct_chunks"] = args.pages, len(texts)
        report["in_process_1_thread"], reference = in_process(texts, cache_dir, 1)
        report["in_process_2_threads"], _ = in_process(texts, cache_dir, 2)
        started = time.perf_counter()
        if args.address:
            ray.init(address=args.address, log_to_driver=False)
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        report["ray_start_seconds"] = round(time.perf_counter() - started, 2)
        try:
            for workers in pools:
                report[f"ray_{workers}_workers"] = on_ray(texts, cache_dir, workers, reference, args.address)
        finally:
            ray.shutdown()
    first, local = report[f"ray_{pools[0]}_workers"], report["in_process_2_threads"]
    for workers in pools[1:]:
        figures = report[f"ray_{workers}_workers"]
        speedup = first["warm_seconds"] / figures["warm_seconds"]
        report[f"scaling_{pools[0]}_to_{workers}_workers_warm"] = round(speedup, 2)
        report[f"ray_{workers}_workers_over_in_process_2_threads"] = {
            "cold": round(figures["seconds"] / local["seconds"], 2),
            "warm": round(figures["warm_seconds"] / local["seconds"], 2)}
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
