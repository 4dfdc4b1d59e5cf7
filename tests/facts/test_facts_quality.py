"""The rule extractor held to its targets on the labelled French set (tests/facts/data/).

The figures themselves (dev and held-out apart, rates) are printed by bench/facts_quality.py;
this test only fails when a change makes the extractor fall below the targets of issue 12.
"""

from __future__ import annotations

from knowledge_plane.facts.evaluation import load, score_pairs, score_sentences


def test_the_labelled_set_is_large_and_has_a_held_out_part():
    sentences, pairs = load("sentences.jsonl"), load("pairs.jsonl")
    assert len(sentences) >= 80 and len(pairs) >= 20
    assert {r["split"] for r in sentences} == {r["split"] for r in pairs} == {"dev", "heldout"}
    kinds = {k for p in pairs for k in p["expected"]}
    assert kinds == {"CONTRADICTS", "OVERRIDES", "DUPLICATES", "OUTDATED"}
    assert sum(not p["expected"] for p in pairs) >= 5  # pairs that must not conflict


def test_value_and_unit_precision_and_recall_meet_the_targets():
    report = score_sentences(load("sentences.jsonl"))
    assert report.value_unit.precision >= 0.95, report.misses
    assert report.value_unit.recall >= 0.85, report.misses


def test_every_labelled_pair_is_typed_right():
    report = score_pairs(load("pairs.jsonl"))
    assert report.accuracy == 1.0, report.wrong
