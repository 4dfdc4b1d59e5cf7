"""The query service's retrieval settings: ``Settings.service`` read as a ``RetrievalConfig``.

The values are fields of ``knowledge_plane.settings.ServiceSettings`` (variables in
docs/configuration.md); the defaults are the calibrated ones of ``knowledge_plane.serving.retrieval``.
"""

from __future__ import annotations

from knowledge_plane.serving.retrieval import RetrievalConfig, parse_thresholds
from knowledge_plane.settings import ServiceSettings


def retrieval_config(service: ServiceSettings) -> RetrievalConfig:
    return RetrievalConfig(dense_weight=service.dense_weight, bm25_weight=service.bm25_weight,
                           dense_share=service.dense_share, thresholds=parse_thresholds(service.score_thresholds),
                           relevance_threshold=service.relevance_threshold)
