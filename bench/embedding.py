"""Embedding benchmark (issue 15): start-up cost per component, one-query latency per backend, raw
encode rate per backend on real chunks, and the int8 evidence. Prints figures, never a test.

    PYTHONPATH=. .venv/bin/python bench/embedding.py [--queries 200] [--chunks 300] [--int8]

- *Start-up*: each line is a fresh interpreter doing one thing (import a component, load a model,
  export the ONNX graph into an empty cache directory), timed from inside, median of ``--repeat``.
- *Query*: ``QueryEncoder`` with one thread per call, as the service runs it, on the calibration
  questions: p50 and p95 of one embed, per backend.
- *Encode*: ``Embedder.encode`` on the distinct chunk texts of the sample corpus, per backend, and
  the cosine of every ONNX vector to the PyTorch one.
- *int8* (``--int8``): ONNX Runtime's dynamic quantization of the exported graph, per tensor and
  per channel; rate and cosine to the fp32 vectors. Not a backend: see docs/performance.md,
  "int8: not shipped", for why.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# name → statements timed in a fresh interpreter (the cache dir of ONNX export steps is argv[1]).
STARTUP = {
    "python -c pass": "pass",
    "import knowledge_plane.build.stages (the stages)": "import knowledge_plane.build.stages",
    "import definitions (Dagster code location)": "import definitions",
    "import torch": "import torch",
    "import sentence_transformers": "import sentence_transformers",
    "import openvino": "import openvino",
    "import onnxruntime": "import onnxruntime",
    "import docling.document_converter": "import docling.document_converter",
    "load model: PyTorch (sentence-transformers)": "from knowledge_plane.serving.embedding import Embedder; "
                                                   "Embedder(backend='torch').load()",
    "export ONNX graph (once per weights hash)": (
        "from knowledge_plane.serving.embedding import onnx_model_path; onnx_model_path(CACHE)"),
    "load model: ONNX Runtime (export present)": "from knowledge_plane.serving.embedding import Embedder; "
    "Embedder(backend='onnx', "
                                                 "cache_dir=CACHE).load()",
    "load model: OpenVINO (export present)": "from knowledge_plane.serving.embedding import Embedder; "
    "Embedder(backend='openvino', "
                                             "cache_dir=CACHE).load()",
    "first query vector: OpenVINO": "from knowledge_plane.serving.query_encoder import QueryEncoder; "
                                    "QueryEncoder(backend='openvino', cache_dir=CACHE).encode_query('bonjour')",
    "first query vector: ONNX Runtime": "from knowledge_plane.serving.query_encoder import QueryEncoder; "
                                        "QueryEncoder(backend='onnx', cache_dir=CACHE).encode_query('bonjour')",
    "first query vector: PyTorch": "from knowledge_plane.serving.query_encoder import QueryEncoder; "
                                   "QueryEncoder(backend='torch').encode_query('bonjour')",
}
TIMED = """
import sys, time
from pathlib import Path
CACHE = Path(sys.argv[1])
started = time.perf_counter()
exec(sys.argv[2])
print(time.perf_counter() - started)
"""


def startup(repeat: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    figures = {}
    with tempfile.TemporaryDirectory(prefix="kp-bench-embedding-") as tmp:
        shared = Path(tmp) / "shared"
        # Every line but the export's finds the export in place, as on a machine that made it once.
        subprocess.run([sys.executable, "-c", TIMED, str(shared),
                        "from knowledge_plane.serving.embedding import onnx_model_path; "
                        "onnx_model_path(CACHE)"], env=env, cwd=PROJECT_ROOT, capture_output=True, check=True)
        for name, code in STARTUP.items():
            if "openvino" in code.lower() and importlib.util.find_spec("openvino") is None:
                continue  # the openvino extra is not installed
            runs = []
            for i in range(repeat):
                # The export is timed into an empty directory each time; everything else reuses one.
                cache = Path(tmp) / f"export-{i}" if name.startswith("export") else shared
                out = subprocess.run([sys.executable, "-c", TIMED, str(cache), code], env=env, cwd=PROJECT_ROOT,
                                     capture_output=True, text=True, check=True).stdout
                runs.append(float(out.strip().splitlines()[-1]))
            figures[name] = statistics.median(runs)
            print(f"  {name:<48} {figures[name] * 1000:8.0f} ms", flush=True)
    return figures


def query_latency(questions: list[str], repeat: int) -> dict[str, dict[str, float]]:
    from knowledge_plane.serving.embedding import installed_graph_runtimes
    from knowledge_plane.serving.query_encoder import QueryEncoder

    figures = {}
    for backend in [*installed_graph_runtimes(), "torch"]:
        encoder = QueryEncoder(torch_threads=1, backend=backend)
        encoder.encode_query("warm-up")
        times = []
        for question in (questions * repeat)[: max(len(questions), 1) * repeat]:
            started = time.perf_counter()
            encoder.encode_query(question)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        figures[backend] = {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
                            "queries": len(times)}
        print(f"  {backend:<6} p50 {figures[backend]['p50_ms']:.1f} ms, p95 {figures[backend]['p95_ms']:.1f} ms "
              f"({len(times)} queries, 1 thread)", flush=True)
    return figures


def sample_chunks(limit: int) -> list[str]:
    """Distinct chunk texts of the sample corpus, through the build's own stages."""
    from knowledge_plane.build.records import ChunksRecord
    from knowledge_plane.build.stages import BuildContext, document_chunks, parsed_documents, raw_documents
    from knowledge_plane.settings import Settings

    with tempfile.TemporaryDirectory(prefix="kp-bench-chunks-") as tmp:
        settings = Settings.from_environ({}, paths={"data_dir": Path(tmp), "corpus_dir": PROJECT_ROOT / "knowledge"},
                                         registry={"url": f"sqlite:///{tmp}/registry.db"})
        ctx = BuildContext(settings)
        texts: dict[str, str] = {}
        for folder in sorted(p for p in settings.paths.corpus_dir.iterdir() if p.is_dir()):
            namespace = f"knowledge:{folder.name}"
            raw_documents(ctx, namespace), parsed_documents(ctx, namespace), document_chunks(ctx, namespace)
            for chunk in ctx.stages.read(ChunksRecord, namespace).chunks:
                texts.setdefault(chunk["text_hash"], chunk["embed_text"])
    return list(texts.values())[:limit]


def timed_encode(encode, texts: list[str]) -> tuple[np.ndarray, float]:
    encode(texts[:4])
    started = time.perf_counter()
    vectors = encode(texts)
    return vectors, len(texts) / (time.perf_counter() - started)


def encode_rates(texts: list[str]) -> dict[str, dict[str, float]]:
    """Each backend in turn, twice, alternating, so a change of load weighs on all of them."""
    from knowledge_plane.serving.embedding import Embedder, installed_graph_runtimes

    embedders = {name: Embedder(backend=name) for name in ["torch", *installed_graph_runtimes()]}
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    vectors = {}
    for _ in range(2):
        for name, embedder in embedders.items():
            vectors[name], rate = timed_encode(embedder.encode, texts)
            rates[name].append(rate)
    figures = {}
    for name in embedders:
        cosines = np.sum(vectors["torch"] * vectors[name], axis=1)
        rate = statistics.median(rates[name])
        figures[name] = {"chunks_per_s": rate, "cosine_min": float(cosines.min()), "cosine_mean": float(cosines.mean())}
        print(f"  {name:<9} {rate:6.1f} chunks/s ({rate / statistics.median(rates['torch']):.2f}× PyTorch); "
              f"cosine to PyTorch min {cosines.min():.6f}, mean {cosines.mean():.6f}", flush=True)
    return figures


def int8(texts: list[str], fp32_rate: float) -> dict[str, dict[str, float]]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from knowledge_plane.serving.embedding import Embedder, OnnxSentenceEncoder, default_cache_dir, onnx_model_path

    fp32 = Embedder(backend="onnx")
    reference = fp32.encode(texts)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="kp-bench-int8-") as tmp:
        for name, options in {"per tensor": {}, "per channel": {"per_channel": True}}.items():
            path = Path(tmp) / f"{name.replace(' ', '-')}.onnx"
            quantize_dynamic(onnx_model_path(default_cache_dir()), path, weight_type=QuantType.QInt8, **options)
            quantized = Embedder(backend="onnx")
            quantized.model = OnnxSentenceEncoder(path, quantized.threads)  # the same batching, another graph
            vectors, rate = timed_encode(quantized.encode, texts)
            cosines = np.sum(vectors * reference, axis=1)
            figures[name] = {"chunks_per_s": rate, "cosine_mean": float(cosines.mean()),
                             "cosine_min": float(cosines.min())}
            print(f"  int8 {name:<12} {rate:6.1f} chunks/s ({rate / fp32_rate:.2f}× fp32 ONNX); cosine to fp32 "
                  f"mean {cosines.mean():.4f}, min {cosines.min():.4f}", flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh interpreters per start-up line (median)")
    parser.add_argument("--queries", type=int, default=2, help="passes over the calibration questions")
    parser.add_argument("--chunks", type=int, default=300, help="sample-corpus chunks to encode")
    parser.add_argument("--int8", action="store_true", help="also measure dynamic int8 quantization")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from knowledge_plane.serving.calibration import load_questions

    report: dict[str, object] = {"load_average_before": os.getloadavg(), "cpus": os.cpu_count()}
    print(f"== start-up, fresh interpreter each, median of {args.repeat}")
    report["startup_seconds"] = startup(args.repeat)
    print("== one query embed")
    report["query"] = query_latency([q.text for q in load_questions()[0]], args.queries)
    texts = sample_chunks(args.chunks)
    print(f"== raw encode, {len(texts)} sample-corpus chunks, batch 32 sorted by length, 2 threads")
    report["encode"] = encode = encode_rates(texts)
    if args.int8:
        print("== dynamic int8 quantization of the ONNX graph")
        report["int8"] = int8(texts, encode["onnx"]["chunks_per_s"])
    report["load_average_after"] = os.getloadavg()
    print(f"load average before {report['load_average_before'][0]:.2f}, after {report['load_average_after'][0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
