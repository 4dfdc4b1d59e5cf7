"""KNOWLEDGE_VECTOR_COLLECTIONS: entries parsed, bad ones refused with what is wrong, namespaces matched."""

from __future__ import annotations

import pytest

from knowledge_plane.storage.collection_sizing import CollectionSizing, parse_collection_sizing, sizing_for


def test_entries_parse_into_per_namespace_sizings():
    table = parse_collection_sizing(
        " knowledge:*=shards:2, replicas:3 ,write_consistency:QUORUM ; knowledge:runbooks=shards:1;*=replicas:2")
    assert table == {
        "knowledge:*": CollectionSizing(shards=2, replicas=3, write_consistency="quorum"),
        "knowledge:runbooks": CollectionSizing(shards=1),
        "*": CollectionSizing(replicas=2),
    }
    assert parse_collection_sizing("") == parse_collection_sizing(None) == parse_collection_sizing(" ; ") == {}


def test_a_namespace_takes_its_entry_then_the_longest_pattern_then_the_stores_defaults():
    table = parse_collection_sizing("knowledge:*=shards:2;knowledge:faq*=shards:3;knowledge:faq=shards:4")
    assert sizing_for(table, "knowledge:faq").shards == 4
    assert sizing_for(table, "knowledge:faq-fr").shards == 3
    assert sizing_for(table, "knowledge:docs").shards == 2
    assert sizing_for(table, "internal:docs") == CollectionSizing()  # nothing is sent: today's collections


@pytest.mark.parametrize(("sizing", "factor", "level"), [
    (CollectionSizing(), None, None),
    (CollectionSizing(shards=4), None, None),
    (CollectionSizing(replicas=3, write_consistency="one"), 1, "ONE"),
    (CollectionSizing(replicas=3, write_consistency="quorum"), 2, "QUORUM"),
    (CollectionSizing(replicas=4, write_consistency="quorum"), 3, "QUORUM"),
    (CollectionSizing(replicas=3, write_consistency="all"), 3, "ALL"),
    (CollectionSizing(replicas=5, write_consistency=2), 2, "QUORUM"),  # Weaviate: the least level that waits for 2
    (CollectionSizing(replicas=5, write_consistency=4), 4, "ALL"),
    (CollectionSizing(write_consistency="all"), 1, "ONE"),  # no replicas given: the stores' one replica
])
def test_write_consistency_as_qdrant_factor_and_weaviate_level(sizing, factor, level):
    assert sizing.write_factor() == factor
    assert sizing.write_level() == level


@pytest.mark.parametrize(("value", "message"), [
    ("shards:2", r"'shards:2': expected 'namespace=shards:N,.*entries separated by ';'"),
    ("knowledge:*=", r"'knowledge:\*=': expected 'namespace="),
    ("=shards:2", r"'=shards:2': expected"),
    ("knowledge:*=shards:0", r"shards must be a whole number ≥ 1, got '0'"),
    ("knowledge:*=replicas:1.5", r"replicas must be a whole number ≥ 1, got '1.5'"),
    ("knowledge:*=shard:2", r"unknown option 'shard' \(known: shards, replicas, write_consistency\)"),
    ("knowledge:*=shards", r"option 'shards' has no value"),
    ("knowledge:*=shards:2,shards:3", r"shards is given twice"),
    ("knowledge:*=replicas:2,write_consistency:most", r"write_consistency must be a whole number ≥ 1, got 'most'"),
    ("knowledge:*=replicas:2,write_consistency:3", r"write_consistency 3 exceeds the 2 replica\(s\)"),
    ("knowledge:*=write_consistency:2", r"write_consistency 2 exceeds the 1 replica\(s\)"),
    ("knowledge:*=shards:2;knowledge:*=shards:3", r"'knowledge:\*' is given twice"),
    ("knowledge:*=shards:2,knowledge:faq=shards:3", r"unknown option 'knowledge'"),  # entries need ';'
])
def test_a_bad_entry_is_refused_with_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message):
        parse_collection_sizing(value)
