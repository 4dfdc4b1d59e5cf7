"""The service's query encoder gives the build's vectors, from several threads at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

TEXTS = ["Combien de temps ai-je pour retourner une pièce ?", "x", "é" * 2000,
         "Le voyant moteur orange est allumé, puis-je continuer à rouler ?"]


@pytest.mark.parametrize("text", TEXTS)
def test_same_vectors_as_the_build(embedder, build_embedder, text):
    ours, build = embedder.encode_query(text), build_embedder.encode_query(text)
    assert ours.dtype == np.float32 and ours.shape == (384,)
    assert np.allclose(ours, build, atol=1e-5)
    assert abs(float(np.linalg.norm(ours)) - 1) < 1e-5


def test_concurrent_callers(embedder):
    expected = {t: embedder.encode_query(t) for t in TEXTS}
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for text in TEXTS * 5:
                assert np.allclose(embedder.encode_query(text), expected[text], atol=1e-6)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
