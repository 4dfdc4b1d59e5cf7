"""The relevance model's passage vectors: written beside the versions of the namespaces that carry
them, embedded once, and what the query service's gate then reads (knowledge_plane.serving.relevance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge_plane.serving.embedding import EmbeddingCache
from knowledge_plane.serving.relevance import RELEVANCE_MODEL, RelevanceModel
from knowledge_plane.storage.index_store import RELEVANCE, read_version
from knowledge_plane.storage.registry import LATEST, Registry
from tests.building import build


def latest(settings, namespace: str):
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    version = registry.aliases(namespace)[namespace][LATEST]
    return read_version(Path(registry.version(namespace, version).path))


def test_relevance_vectors_are_written_for_the_configured_namespaces_and_embedded_once(settings):
    settings = settings.updated(build={"relevance_namespaces": "knowledge:faq"})
    success, reports = build(settings, ["knowledge:faq", "knowledge:guides"])
    assert success, reports
    faq, guides = latest(settings, "knowledge:faq"), latest(settings, "knowledge:guides")
    assert guides.relevance is None and not (guides.path / RELEVANCE).exists()
    assert guides.manifest["relevance_model"] is None
    assert faq.manifest["relevance_model"] == RELEVANCE_MODEL
    assert faq.relevance is not None and faq.relevance.shape == (len(faq.payloads), 384)
    assert np.allclose(np.linalg.norm(faq.relevance, axis=1), 1.0, atol=1e-3)
    # Row i is the passage of payload i, as the model embeds it (title, headings and text).
    question = RelevanceModel.shared().query("vous livrez en Belgique ?")
    best = int(np.argmax(np.asarray(faq.relevance) @ question))
    assert "belgique" in faq.payloads[best]["text"].lower()
    cache = EmbeddingCache(settings.paths.cache_dir / "embeddings.sqlite")
    stored = cache.count(RELEVANCE_MODEL)
    assert stored >= len(faq.payloads)

    success, reports = build(settings, ["knowledge:faq"])  # nothing changed: nothing embedded again
    assert success and cache.count(RELEVANCE_MODEL) == stored
    assert latest(settings, "knowledge:faq").manifest["version"] == faq.manifest["version"]


def test_a_version_without_relevance_vectors_is_another_version(settings):
    """Turning the relevance vectors on or off changes how a namespace is served: a new version."""
    on = settings.updated(build={"relevance_namespaces": "knowledge:faq"})
    assert build(on, ["knowledge:faq"])[0]
    with_vectors = latest(on, "knowledge:faq").manifest["version"]
    off = settings.updated(build={"relevance_namespaces": "none"})
    _, reports = build(off, ["knowledge:faq"])
    report = reports["knowledge:faq"]
    registry = Registry(off.registry.url.get_secret_value(), off.tenant_id)
    assert report["version"] != with_vectors
    assert read_version(Path(registry.version("knowledge:faq", report["version"]).path)).relevance is None
    # The FAQ's short colloquial questions are what the score alone turns away: the evaluation gate keeps
    # the version with relevance vectors @latest.
    evaluation = next(c for c in report["checks"] if c["name"] == "evaluation")
    assert not report["promoted"] and "answered dropped" in evaluation["detail"], report
    assert latest(off, "knowledge:faq").manifest["version"] == with_vectors
