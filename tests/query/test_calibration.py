"""The calibrated thresholds keep their promise on the sample corpus (bench/calibration question sets).

Only the documentation questions are checked here: the test build indexes a three-module stand-in
for internal:code. ``bench/query.py --calibrate`` measures the full sets on a full build.
"""

from __future__ import annotations

import pytest

from knowledge_plane.serving.calibration import evaluate, load_questions
from knowledge_plane.serving.query_engine import QueryEngine
from knowledge_plane.serving.retrieval import DEFAULT_THRESHOLDS, RetrievalConfig


@pytest.fixture(scope="module")
def snapshot(built):
    from knowledge_plane.serving.snapshot import load_snapshot
    from knowledge_plane.storage.registry import Registry
    from tests.query.support import registry_url_of

    registry = Registry(registry_url_of(built), "default")
    loaded, checks = load_snapshot(registry)
    assert loaded is not None, checks
    return loaded


def test_on_topic_answered_and_off_topic_turned_away(snapshot, embedder):
    on_topic, off_topic = load_questions()
    docs = [q for q in on_topic if q.namespace.startswith("knowledge:")]
    assert len(docs) >= 50 and len(off_topic) >= 40
    report = evaluate(QueryEngine(embedder, RetrievalConfig(), "default"), snapshot, docs, off_topic)
    assert report.answered_rate >= 0.95, report.misses
    assert report.turned_away_rate >= 0.80, report.misses


def test_code_and_kpi_are_stricter_than_docs():
    config = RetrievalConfig()
    docs = config.threshold("knowledge:faq")
    assert config.threshold("knowledge:runbooks") > docs
    assert config.threshold("internal:code") > docs
    assert docs < DEFAULT_THRESHOLDS["default"] < config.threshold("internal:code")
