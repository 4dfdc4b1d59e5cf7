"""Query-time embedding: one short question at a time, from many request threads at once.

``core.embedding.Embedder`` serves the build: large batches, one caller, every core, through
sentence-transformers. A query service wants the opposite: one short text per call, several calls
in flight, each on one core (on two cores, two one-thread forward passes beat one two-thread pass
that other work keeps interrupting), and a small process. So the same model files are run with
``transformers`` directly — sentence-transformers and what it imports (scikit-learn, pandas,
pyarrow…) would add about 230 MiB to every worker — following the model's own sentence-transformers
configuration (Transformer → mean Pooling → Normalize, checked at load): the vectors equal the
build's. Tokenisation is serialised — the fast tokenizer mutates its truncation settings on every
call — while forward passes run in parallel, since torch releases the GIL.
"""

from __future__ import annotations

import json
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from core.embedding import DIMENSION, MAX_SEQ_TOKENS, MODEL_NAME, model_dir

EXPECTED_PIPELINE = ["Transformer", "Pooling", "Normalize"]


def _pipeline(path: Path) -> tuple[int, bool]:
    """(max tokens, lower-case first) after checking the model is mean-pooled and normalised."""
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


class QueryEncoder:
    def __init__(self, torch_threads: int | None = 1):
        self.model_name = MODEL_NAME
        self.dimension = DIMENSION
        self.torch_threads = torch_threads
        self._tokenize = threading.Lock()
        self._load = threading.Lock()

    @cached_property
    def _parts(self) -> tuple[Any, Any, int, bool]:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)  # the process serves queries; nothing else needs the cores
        path = model_dir()
        max_tokens, lower = _pipeline(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path))
        model.eval()
        return tokenizer, model, max_tokens, lower

    def encode_query(self, text: str) -> np.ndarray:
        """A unit-norm float32 vector for ``text``, equal to what the build's Embedder gives."""
        import torch

        with self._load:  # the first callers wait for one load instead of racing to load twice
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
