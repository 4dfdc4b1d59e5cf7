"""Query-time embedding: one short question at a time, from many request threads at once.

``knowledge_plane.serving.embedding.Embedder`` serves the build: large batches, one caller, every core. A query
service wants the opposite: one short text per call, several calls in flight, each on one core (on
two cores, two one-thread forward passes beat one two-thread pass that other work keeps
interrupting), and a small process. The backend is the build's (``KNOWLEDGE_EMBEDDING_BACKEND``):

- ``onnx`` / ``openvino``: the build's exported graph and fast tokenizer
  (``knowledge_plane.serving.embedding.GRAPH_RUNTIMES``) on one thread per call; no torch in the process once the
  export exists.
- ``torch``: the same model files run with ``transformers`` directly — sentence-transformers and
  what it imports (scikit-learn, pandas, pyarrow…) would add about 230 MiB to every worker —
  following the model's own sentence-transformers configuration (checked at load). Tokenisation is
  serialised — the transformers tokenizer mutates its truncation settings on every call — while
  forward passes run in parallel, since torch releases the GIL.

Either way the vectors equal the build's.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_plane.serving.embedding import (
    DIMENSION,
    GRAPH_RUNTIMES,
    MODEL_NAME,
    OnnxSentenceEncoder,
    default_cache_dir,
    embedding_backend,
    model_dir,
    model_pipeline,
    onnx_model_path,
)


class QueryEncoder:
    def __init__(self, torch_threads: int | None = 1, backend: str | None = None, cache_dir: Path | None = None):
        """``torch_threads``: threads per forward pass, for either backend (None: the runtime's default)."""
        self.model_name = MODEL_NAME
        self.dimension = DIMENSION
        self.torch_threads = torch_threads
        self.backend = embedding_backend(backend)
        self._cache_dir = cache_dir
        self._tokenize = threading.Lock()
        self._load = threading.Lock()

    @cached_property
    def _graph(self) -> OnnxSentenceEncoder:
        graph = onnx_model_path(self._cache_dir or default_cache_dir())
        return GRAPH_RUNTIMES[self.backend](graph, self.torch_threads or 0)

    @cached_property
    def _parts(self) -> tuple[Any, Any, int, bool]:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)  # the process serves queries; nothing else needs the cores
        path = model_dir()
        max_tokens, lower = model_pipeline(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)  # never a hub call
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        return tokenizer, model, max_tokens, lower

    def encode_query(self, text: str) -> np.ndarray:
        """A unit-norm float32 vector for ``text``, equal to what the build's Embedder gives."""
        if self.backend in GRAPH_RUNTIMES:
            with self._load:  # the first callers wait for one load instead of racing to load twice
                encoder = self._graph
            return encoder([text])[0]
        import torch

        with self._load:
            tokenizer, model, max_tokens, lower = self._parts
        with self._tokenize:
            batch = tokenizer([text.lower() if lower else text], truncation=True, max_length=max_tokens,
                              return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(pooled, p=2, dim=1)[0]
        return vector.float().numpy()
