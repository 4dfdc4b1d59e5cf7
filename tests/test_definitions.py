"""The code location loads, and its asset graph, groups, checks and jobs are what the README promises."""

from __future__ import annotations

import warnings

import dagster as dg

from knowledge_plane.build.sources import discover_namespaces
from knowledge_plane.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from definitions import defs

EXPECTED_ASSETS = {
    "raw_documents": ("sources", set()),
    "parsed_documents": ("parsing", {"raw_documents"}),
    "document_chunks": ("chunking", {"parsed_documents"}),
    "chunk_embeddings": ("embedding", {"document_chunks"}),
    "extracted_facts": ("facts", {"document_chunks"}),
    "index_versions": ("indexing", {"chunk_embeddings", "extracted_facts"}),
    "index_aliases": ("publishing", {"index_versions"}),
}


def test_asset_keys_groups_and_lineage_snapshot():
    graph = defs.resolve_asset_graph()
    build_keys = {k.to_user_string() for k in graph.get_all_asset_keys()} & set(EXPECTED_ASSETS)
    assert build_keys == set(EXPECTED_ASSETS)
    for name, (group, parents) in EXPECTED_ASSETS.items():
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == group
        assert {p.to_user_string() for p in node.parent_keys} == parents
        assert node.description and node.kinds
        assert node.partitions_def.get_partition_keys() == discover_namespaces(Settings())


def test_index_checks_gate_each_namespace_and_the_run_fails_when_one_is_held_back():
    checks = {k.name: spec for k, spec in ((s.key, s) for a in defs.assets for s in getattr(a, "check_specs", []))}
    assert set(checks) == {
        "non_empty",
        "dimension",
        "finite_unit_norm",
        "unique_chunk_ids",
        "no_empty_text",
        "no_secrets",
        "no_critical_conflicts",
        "evaluation",
        "no_namespace_held_back",
    }
    # index_versions' checks judge each namespace; a blocking one would fail every namespace of the run.
    index_checks = {n: spec for n, spec in checks.items() if spec.asset_key == dg.AssetKey("index_versions")}
    assert len(index_checks) == 8 and not any(spec.blocking for spec in index_checks.values())
    assert checks["no_namespace_held_back"].blocking
    assert checks["no_namespace_held_back"].asset_key == dg.AssetKey("index_aliases")


def test_jobs_and_resources():
    assert defs.resolve_job_def("build_knowledge").partitions_def is not None
    assert defs.resolve_job_def("rollback_index")
    assert "knowledge" in defs.resources


def test_materialize_smoke(settings):
    """The assets materialize with plain dg.materialize, for one namespace partition."""
    from assets import BUILD_ASSETS
    from resources import build_resources

    result = dg.materialize(BUILD_ASSETS, partition_key="knowledge:faq", resources=build_resources(settings))
    assert result.success
    aliases = result.asset_materializations_for_node("index_aliases")[0].metadata
    assert aliases["promoted"].value == 1
    embed = result.asset_materializations_for_node("chunk_embeddings")[0].metadata
    assert embed["dimension"].value == 384
