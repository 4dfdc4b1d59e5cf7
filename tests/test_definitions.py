"""The code location loads, and its asset graph, groups, checks and jobs are what docs/architecture.md promises."""

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
    from knowledge_plane.build.checks import CHECKS, HELD_BACK_CHECK, HELD_BACK_DESCRIPTION

    checks = {k.name: spec for k, spec in ((s.key, s) for a in defs.assets for s in getattr(a, "check_specs", []))}
    assert set(checks) == set(CHECKS) | {HELD_BACK_CHECK}
    assert len(CHECKS) == 9
    # index_versions' checks judge each namespace; a blocking one would fail every namespace of the run.
    index_checks = {n: spec for n, spec in checks.items() if spec.asset_key == dg.AssetKey("index_versions")}
    assert set(index_checks) == set(CHECKS) and not any(spec.blocking for spec in index_checks.values())
    for name, spec in index_checks.items():  # the UI shows the one description the checks module holds
        assert spec.description.startswith(CHECKS[name]) and "Per namespace" in spec.description
    assert checks[HELD_BACK_CHECK].blocking and checks[HELD_BACK_CHECK].description == HELD_BACK_DESCRIPTION
    assert checks[HELD_BACK_CHECK].asset_key == dg.AssetKey("index_aliases")


def test_every_build_asset_has_the_single_run_backfill_policy_and_the_namespace_partitions():
    from assets import BUILD_ASSETS

    for asset in BUILD_ASSETS:
        assert asset.backfill_policy == dg.BackfillPolicy.single_run(), asset.key
        assert asset.partitions_def.get_partition_keys() == discover_namespaces(Settings())


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
    # Per-namespace tables are typed Dagster tables (sortable in the UI), not markdown.
    [row] = aliases["aliases"].records
    assert row.data["namespace"] == "knowledge:faq" and row.data["promoted"] is True
    assert [(c.name, c.type) for c in aliases["aliases"].schema.columns][:4] == [
        ("namespace", "string"), ("latest", "string"), ("rollback", "string"), ("promoted", "bool")
    ]
    [chunks] = result.asset_materializations_for_node("document_chunks")[0].metadata["namespaces"].records
    assert isinstance(chunks.data["chunks"], int) and chunks.data["chunks"] > 0
