"""Hybrid search, filters before ranking, thresholds, gating and truth levels (knowledge_plane.serving.retrieval)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_plane.serving.retrieval import (
    LOW_CONFIDENCE,
    NEEDS_CLARIFICATION,
    REFUSED,
    SUCCESS,
    Filters,
    LoadedIndex,
    RetrievalConfig,
    parse_thresholds,
    search,
)
from knowledge_plane.storage.index_store import IndexVersion

DIM = 8
QUERY = np.eye(DIM, dtype=np.float32)[0]


def vector(cosine: float) -> np.ndarray:
    """A unit vector at ``cosine`` from the query."""
    v = np.zeros(DIM, dtype=np.float32)
    v[0], v[1] = cosine, np.sqrt(1 - cosine**2)
    return v


def index(namespace: str, rows: list[dict]) -> LoadedIndex:
    payloads = [
        {
            "chunk_id": f"{namespace}-{i}",
            "doc_id": f"doc{i}",
            "doc_version": "1",
            "title": row.get("title", f"T{i}"),
            "namespace": namespace,
            "source_path": "x.md",
            "heading_path": [],
            "location": "",
            "text": row["text"],
            "truth_level": row.get("truth", "L1"),
            "tenant_id": row.get("tenant", "default"),
            "pack_id": row.get("pack"),
            "source_app": row.get("app", "git"),
        }
        for i, row in enumerate(rows)
    ]
    vectors = np.stack([vector(row["cos"]) for row in rows])
    manifest = {"namespace": namespace, "version": "v1", "dimension": DIM}
    # "rel": the passage's relevance-model cosine to RELEVANCE_QUERY (a version with relevance vectors)
    relevance = np.stack([vector(row["rel"]) for row in rows]) if all("rel" in row for row in rows) else None
    return LoadedIndex.from_version(IndexVersion(Path("."), manifest, vectors, payloads, relevance))


CONFIG = RetrievalConfig(thresholds={"default": 0.5})


DEFAULT_FILTERS = Filters("default")


RELEVANCE_QUERY = QUERY  # the question's relevance-model vector (same geometry as the retrieval one here)


def run(indexes, text="freins usés", filters=DEFAULT_FILTERS, top_k=5, config=CONFIG, verified_only=False):
    return search(indexes, QUERY, text, filters, top_k, config, verified_only, relevance_vector=RELEVANCE_QUERY)


def test_success_with_three_passages_above_threshold():
    ix = index("knowledge:a", [{"text": "freins usés", "cos": c} for c in (0.9, 0.85, 0.8, 0.1)])
    result = run([ix])
    assert result.status == SUCCESS
    assert [h.row for h in result.passages] == [0, 1, 2]
    assert all(h.score >= 0.5 for h in result.passages)
    assert result.passages[0].score == pytest.approx(0.7 * 0.9 + 0.3 * 1.0, abs=1e-5)


def test_fewer_than_three_above_threshold_needs_clarification():
    # no word of the question in the text: scores 0.7 × cosine, 0.63 and 0.56, both under 0.5 + lone_margin
    ix = index("knowledge:a", [{"text": "autre", "cos": c, "title": f"Doc {c}"} for c in (0.9, 0.8, 0.2, 0.1)])
    result = run([ix])
    assert result.status == NEEDS_CLARIFICATION
    assert result.passages == []
    assert len(result.suggestions) >= 2 and "Doc 0.9" in result.suggestions[1]


@pytest.mark.parametrize(("cosine", "answered"), [(0.9, True), (0.55, True), (0.49, False), (0.3, False)])
def test_one_passage_clearing_its_threshold_by_the_lone_margin_answers_alone(cosine, answered):
    # 0.7 × cosine + 0.3 (every word of the question): 0.93, 0.685, 0.643, 0.51; the bar is 0.5 + 0.15
    ix = index("knowledge:a", [{"text": "freins usés", "cos": cosine}, {"text": "autre", "cos": 0.75},
                               {"text": "autre", "cos": 0.1}])
    result = run([ix])
    assert result.above_threshold == 2  # the second passage (0.525) clears 0.5 too: still fewer than 3
    if answered:
        assert result.status == SUCCESS and [h.row for h in result.passages] == [0, 1]
        assert "or one by 0.15" in result.reason
    else:
        assert result.status == NEEDS_CLARIFICATION and result.passages == []
        assert "2 candidate(s) cleared their namespace's threshold, 3 needed" in result.reason
    always_three = run([ix], config=RetrievalConfig(thresholds={"default": 0.5}, lone_margin=None))
    assert always_three.status == NEEDS_CLARIFICATION


def test_the_lone_margin_counts_from_the_passage_own_namespace_threshold():
    strict = index("internal:b", [{"text": "freins usés", "cos": 0.6}])  # 0.72
    config = RetrievalConfig(thresholds={"default": 0.5, "internal:*": 0.6})
    assert run([strict], config=config).status == NEEDS_CLARIFICATION  # 0.72 < 0.6 + 0.15
    lenient = index("knowledge:a", [{"text": "freins usés", "cos": 0.6}])
    assert run([lenient], config=config).status == SUCCESS  # 0.72 ≥ 0.5 + 0.15


def test_filters_apply_before_ranking():
    rows = [
        {"text": "freins usés", "cos": 0.95, "tenant": "other"},
        {"text": "freins usés", "cos": 0.94, "pack": "p2"},
        *[{"text": "freins usés", "cos": 0.8, "pack": "p1"} for _ in range(3)],
    ]
    ix = index("knowledge:a", rows)
    result = run([ix], filters=Filters("default", frozenset({"p1"})))
    assert result.status == SUCCESS
    assert result.candidates == 3
    assert {h.payload["pack_id"] for h in result.passages} == {"p1"}
    assert run([ix], filters=Filters("default", source_apps=frozenset({"nope"}))).status == NEEDS_CLARIFICATION
    assert run([ix], filters=Filters("tenant-x")).status == NEEDS_CLARIFICATION


def test_thresholds_are_per_namespace():
    config = RetrievalConfig(thresholds=parse_thresholds("default=0.5,knowledge:*=0.4,internal:*=0.95"))
    assert config.threshold("knowledge:faq") == 0.4
    assert config.threshold("internal:code") == 0.95
    assert config.threshold("other:x") == 0.5
    code = index("internal:code", [{"text": "freins usés", "cos": 0.9} for _ in range(3)])
    docs = index("knowledge:a", [{"text": "freins usés", "cos": 0.6} for _ in range(3)])
    result = run([code, docs], config=config)
    assert {h.index.namespace for h in result.passages} == {"knowledge:a"}


def test_threshold_syntax_errors():
    with pytest.raises(ValueError):
        parse_thresholds("default=high")
    with pytest.raises(ValueError):
        parse_thresholds("default=3")


def test_truth_levels_weigh_confidence():
    l1 = run([index("knowledge:a", [{"text": "freins usés", "cos": 0.9, "truth": "L1"} for _ in range(3)])])
    l2 = run([index("knowledge:a", [{"text": "freins usés", "cos": 0.9, "truth": "L2"} for _ in range(3)])])
    l3 = run([index("knowledge:a", [{"text": "freins usés", "cos": 0.9, "truth": "L3"} for _ in range(3)])])
    l4 = run([index("knowledge:a", [{"text": "freins usés", "cos": 0.9, "truth": "L4"} for _ in range(3)])])
    assert (l1.confidence, l2.confidence, l3.confidence, l4.confidence) == (1.0, 0.9, 0.6, 0.4)
    assert (l1.status, l2.status, l3.status, l4.status) == (SUCCESS, SUCCESS, LOW_CONFIDENCE, LOW_CONFIDENCE)


def test_unverified_sources_only_are_refused_for_the_verified_only_actor():
    ix = index("knowledge:a", [{"text": "freins usés", "cos": 0.9, "truth": t} for t in ("L3", "L4", "L3")])
    assert run([ix], verified_only=True).status == REFUSED
    assert run([ix], verified_only=True).passages == []
    mixed = index("knowledge:a", [{"text": "freins usés", "cos": 0.9, "truth": t} for t in ("L3", "L2", "L3")])
    assert run([mixed], verified_only=True).status in (SUCCESS, LOW_CONFIDENCE)


def test_rank_fusion_weights():
    rows = [{"text": "batterie", "cos": 0.95}, *[{"text": "freins usés freins usés", "cos": 0.7} for _ in range(3)]]
    ix = index("knowledge:a", rows)
    dense_only = RetrievalConfig(thresholds={"default": 0.0}, bm25_weight=0.0)
    lexical_heavy = RetrievalConfig(thresholds={"default": 0.0}, dense_weight=0.1, bm25_weight=1.0)
    assert run([ix], config=dense_only).passages[0].row == 0
    assert run([ix], config=lexical_heavy).passages[0].row != 0


def test_a_passage_far_ahead_on_bm25_and_just_behind_on_cosine_comes_first():
    # Ranks alone (reciprocal-rank fusion) would put row 0 first: first by cosine, second by BM25, where
    # row 2 is third and first. The fused score weighs how far ahead each is: 0.78 + 1 beats 0.80 + ~0.5.
    rows = [{"text": "freins", "cos": 0.80}, {"text": "batterie", "cos": 0.79}, {"text": "freins usés", "cos": 0.78}]
    ranked = run([index("knowledge:a", rows)], config=RetrievalConfig(thresholds={"default": 0.0})).passages
    assert [h.row for h in ranked] == [2, 0, 1]
    assert ranked[0].fused == pytest.approx((0.78 + 1.0) / 2, abs=1e-5)


def test_one_passage_the_relevance_model_judges_relevant_answers_alone():
    # Scores under the threshold (no word of the question, cosine 0.3): the score rule would turn it away.
    ix = index("knowledge:a", [{"text": "autre", "cos": 0.3, "rel": 0.9}, {"text": "autre", "cos": 0.3, "rel": 0.8},
                               {"text": "autre", "cos": 0.2, "rel": 0.7}])
    result = run([ix])
    assert result.status == SUCCESS and [h.row for h in result.passages] == [0]
    assert result.passages[0].relevance == pytest.approx(0.9, abs=1e-5)
    assert "or one relevant: 0.900 ≥ 0.845" in result.reason
    stricter = run([ix], config=RetrievalConfig(thresholds={"default": 0.5}, relevance_threshold=0.95))
    assert stricter.status == NEEDS_CLARIFICATION and stricter.passages == []


def test_only_the_passages_close_to_the_most_relevant_one_are_shown():
    ix = index("knowledge:a", [{"text": "freins usés", "cos": 0.5, "rel": r} for r in (0.95, 0.94, 0.90, 0.86)])
    assert [h.row for h in run([ix]).passages] == [0, 1]  # within 0.02 of 0.95; 0.90 and 0.86 clear 0.845 only
    wide = run([ix], config=RetrievalConfig(thresholds={"default": 0.5}, relevance_spread=0.1))
    assert [h.row for h in wide.passages] == [0, 1, 2, 3]


def test_the_relevance_model_overrules_high_scores():
    # Three passages clear the score threshold (0.93, 0.895, 0.86), none the relevance threshold: turned away,
    # as "Comment faire de la confiture de fraises ?" is, whose French words score 0.5 against any French text.
    ix = index("knowledge:a", [{"text": "freins usés", "cos": c, "rel": 0.8} for c in (0.9, 0.85, 0.8)])
    assert run([ix]).status == NEEDS_CLARIFICATION
    without_relevance = index("knowledge:a", [{"text": "freins usés", "cos": c} for c in (0.9, 0.85, 0.8)])
    assert run([without_relevance]).status == SUCCESS  # a version without relevance vectors: the score decides
    no_question_vector = search([ix], QUERY, "freins usés", DEFAULT_FILTERS, 5, CONFIG)
    assert no_question_vector.status == SUCCESS and no_question_vector.passages[0].relevance is None


def test_top_k_limits_passages():
    ix = index("knowledge:a", [{"text": "freins usés", "cos": 0.9} for _ in range(10)])
    assert len(run([ix], top_k=2).passages) == 2


def test_a_precomputed_search_index_opens_to_the_same_results(tmp_path):
    from knowledge_plane.serving.retrieval import SEARCH_INDEX, write_search_index
    from knowledge_plane.storage.index_store import write_version

    rows = [{"text": f"freins usés disque {i}", "cos": 0.5 + i / 40, "pack": f"p{i % 2}", "truth": ("L1", "L3")[i % 2]}
            for i in range(12)]
    source = index("knowledge:a", rows)
    payloads = [source.payload(i) for i in range(len(rows))]
    write_version(tmp_path / "v1", source.manifest, np.asarray(source.vectors), payloads)
    scanned = LoadedIndex.open(tmp_path / "v1")
    write_search_index(tmp_path / "v1")
    assert (tmp_path / "v1" / SEARCH_INDEX).is_file()
    stored = LoadedIndex.open(tmp_path / "v1")
    for ix in (scanned, stored):
        result = run([ix], filters=Filters("default", frozenset({"p1"})))
        assert [(h.row, round(h.score, 5)) for h in result.passages] == \
            [(h.row, round(h.score, 5)) for h in run([source], filters=Filters("default", frozenset({"p1"}))).passages]
        assert ix.payload(3) == payloads[3] and ix.truth_level(3) == "L3"
    (tmp_path / "v1" / SEARCH_INDEX).write_bytes(b"not a zip")
    assert len(LoadedIndex.open(tmp_path / "v1")) == 12  # an unusable file falls back to the payloads


# In the scope tests below, the passage that clears the threshold scores 0.615 (cosine 0.45 and every word of
# the question): above 0.5, under the bar at which one passage answers alone (0.5 + lone_margin).
ONE = 0.45


def test_a_whole_small_namespace_keeps_the_minimum():
    # Nothing filtered out: the namespace is small, not the scope narrowed (calibration unchanged).
    ix = index("knowledge:a", [{"text": "freins usés", "cos": ONE}, {"text": "autre", "cos": 0.1}])
    assert run([ix], filters=Filters("default", source_apps=frozenset({"git"}))).status == NEEDS_CLARIFICATION


def test_a_narrowed_scope_smaller_than_the_minimum_answers_from_what_it_holds():
    rows = [{"text": "freins usés", "cos": ONE, "pack": "p1"},
            *[{"text": "freins usés", "cos": 0.2, "pack": "p2"} for _ in range(5)]]
    ix = index("knowledge:a", rows)
    narrowed = Filters("default", frozenset({"p1"}))
    result = run([ix], filters=narrowed)
    assert result.status == SUCCESS and [h.row for h in result.passages] == [0]
    # the same single passage from an unfiltered search: the calibrated minimum of three holds
    assert run([index("knowledge:a", rows[:1])]).status == NEEDS_CLARIFICATION


def test_a_narrowed_scope_counts_documents_not_chunks():
    rows = [{"text": "freins usés", "cos": ONE, "pack": "p1"}, {"text": "freins usés", "cos": 0.1, "pack": "p1"},
            {"text": "autre", "cos": 0.1, "pack": "p2"}]
    ix = index("knowledge:a", rows)
    for payload in ix._payloads[:2]:  # two chunks of one document: one passage above the threshold answers
        payload["doc_id"] = "same"
    assert run([ix], filters=Filters("default", frozenset({"p1"}))).status == SUCCESS


def test_a_large_narrowed_scope_keeps_the_minimum():
    rows = [{"text": "freins usés", "cos": ONE, "pack": "p1"}, *[{"text": "autre", "cos": 0.1, "pack": "p1"}] * 60]
    result = run([index("knowledge:a", rows)], filters=Filters("default", frozenset({"p1"})))
    assert result.status == NEEDS_CLARIFICATION  # its size is not known from the candidates: 3 are needed


def test_verified_only_returns_only_l1_l2_passages_never_mixed():
    rows = [{"text": "freins usés", "cos": c, "truth": t} for c, t in ((0.95, "L4"), (0.9, "L1"), (0.85, "L3"),
                                                                        (0.8, "L2"))]
    ix = index("knowledge:a", rows)
    assert {h.truth_level for h in run([ix]).passages} == {"L1", "L2", "L3", "L4"}
    result = run([ix], verified_only=True)
    assert [h.truth_level for h in result.passages] == ["L1", "L2"]
    only_drafts = index("knowledge:a", [{"text": "freins usés", "cos": c, "truth": "L3"} for c in (0.9, 0.85, 0.8)])
    assert run([only_drafts], verified_only=True).status == REFUSED


def test_unpacked_rows_pass_beside_the_granted_packs():
    rows = [{"text": "freins usés", "cos": 0.9}, {"text": "freins usés", "cos": 0.9, "pack": "p1"},
            {"text": "freins usés", "cos": 0.9, "pack": "p2"}]
    ix = index("knowledge:a", rows)
    assert list(ix.rows(Filters("default", frozenset({"p1"}), unpacked=True))) == [0, 1]
    assert list(ix.rows(Filters("default", frozenset(), unpacked=True))) == [0]
    assert list(ix.rows(Filters("default", frozenset({"p1"})))) == [1]


def test_workspace_filters_rows_before_ranking():
    rows = [{"text": "freins usés", "cos": 0.95}, {"text": "freins usés", "cos": 0.8}]
    ix = index("knowledge:a", rows)
    ix._payloads[1]["workspace"] = "garage"
    rebuilt = LoadedIndex.from_version(IndexVersion(Path("."), ix.manifest, ix.vectors, list(ix._payloads)))
    assert list(rebuilt.rows(Filters("default", workspace="garage"))) == [1]
    assert list(rebuilt.rows(Filters("default", workspace="elsewhere"))) == []
