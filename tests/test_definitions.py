"""The code location loads, and its asset graph, groups, checks and jobs are what docs/architecture.md promises."""

from __future__ import annotations

import warnings
from pathlib import Path

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
    # Every check is partitioned by namespace: the UI shows each namespace's result on its own partition.
    namespaces = discover_namespaces(Settings())
    assert all(spec.partitions_def.get_partition_keys() == namespaces for spec in checks.values())
    # index_versions' checks judge each namespace; a blocking one would fail every namespace of the run.
    index_checks = {n: spec for n, spec in checks.items() if spec.asset_key == dg.AssetKey("index_versions")}
    assert set(index_checks) == set(CHECKS) and not any(spec.blocking for spec in index_checks.values())
    for name, spec in index_checks.items():  # the UI shows the one description the checks module holds
        assert spec.description.startswith(CHECKS[name]) and "Per namespace" in spec.description
    assert checks[HELD_BACK_CHECK].blocking and checks[HELD_BACK_CHECK].description == HELD_BACK_DESCRIPTION
    assert checks[HELD_BACK_CHECK].asset_key == dg.AssetKey("index_aliases")


def test_code_versions_follow_the_versions_of_parser_chunker_model_and_extractor():
    """Bumping one of these constants changes that asset's code_version, so the UI marks it (and what
    is below it) stale."""
    from knowledge_plane.build.chunking import CHUNKER_VERSION
    from knowledge_plane.build.facts import extractor_version
    from knowledge_plane.build.parsing import PARSER_VERSION
    from knowledge_plane.build.sources import SOURCES_VERSION
    from knowledge_plane.domain.embedding_model import MODEL_NAME
    from knowledge_plane.storage.index_store import INDEX_FORMAT_VERSION

    graph = defs.resolve_asset_graph()
    versions = {name: graph.get(dg.AssetKey(name)).code_version for name in EXPECTED_ASSETS}
    assert versions == {
        "raw_documents": SOURCES_VERSION,
        "parsed_documents": PARSER_VERSION,
        "document_chunks": CHUNKER_VERSION,
        "chunk_embeddings": f"{MODEL_NAME}@384",
        "extracted_facts": extractor_version(),
        "index_versions": INDEX_FORMAT_VERSION,
        "index_aliases": None,  # moves aliases only: it follows index_versions' data versions
    }
    assert all(graph.get(dg.AssetKey(n)).owners == ["team:knowledge-plane"] for n in EXPECTED_ASSETS)
    assert all(graph.get(dg.AssetKey(n)).tags.get("plane") == "build" for n in EXPECTED_ASSETS)


def test_the_uis_materialize_runs_in_one_process():
    """The UI's Materialize runs the code location's implicit asset job: its executor is in-process, like
    build_knowledge's, so the model loads once for every step."""
    assert defs.resolve_implicit_global_asset_job_def().executor_def is dg.in_process_executor
    assert defs.resolve_job_def("build_knowledge").executor_def is dg.in_process_executor


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
    """The assets materialize with plain dg.materialize, for one namespace partition: one materialization
    per asset, carrying that namespace's figures, and one check result per check on that partition."""
    from assets import BUILD_ASSETS
    from knowledge_plane.build.checks import CHECKS, HELD_BACK_CHECK
    from resources import build_resources

    result = dg.materialize(BUILD_ASSETS, partition_key="knowledge:faq", resources=build_resources(settings))
    assert result.success
    [aliases] = result.asset_materializations_for_node("index_aliases")
    assert aliases.partition == "knowledge:faq" and aliases.metadata["promoted"].value is True
    [embed] = result.asset_materializations_for_node("chunk_embeddings")
    assert embed.metadata["dimension"].value == 384
    [chunks] = result.asset_materializations_for_node("document_chunks")
    assert isinstance(chunks.metadata["chunks"].value, int) and chunks.metadata["chunks"].value > 0
    assert embed.metadata["chunks"].value == chunks.metadata["chunks"].value
    # The data_quality check's Data Docs are linked from the version's partition.
    [version] = result.asset_materializations_for_node("index_versions")
    assert Path(version.metadata["data_docs"].value).name == "index.html"
    assert Path(version.metadata["data_docs"].value).is_file()
    # Tables stay typed Dagster tables (sortable in the UI), not markdown.
    assert [(c.name, c.type) for c in chunks.metadata["preview"].schema.columns][:3] == [
        ("chunk_id", "string"), ("location", "string"), ("tokens", "int")
    ]
    evaluations = result.get_asset_check_evaluations()
    assert {(e.check_name, e.partition) for e in evaluations} == {
        (name, "knowledge:faq") for name in [*CHECKS, HELD_BACK_CHECK]
    }
    assert all(e.passed and e.target_materialization_data is not None for e in evaluations)


def test_a_reexecution_of_a_reexecution_reads_records_along_its_whole_lineage():
    """r4 re-executes r3, which re-executed r2, which re-executed r1: a step r4 does not re-run reads its
    records from the nearest of r3, r2, r1 that wrote them — not from r1 past r2's newer ones."""
    from resources import _lineage

    with dg.DagsterInstance.ephemeral() as instance:
        parents = {"r2": "r1", "r3": "r2", "r4": "r3"}
        runs = {r: dg.DagsterRun(job_name="build_knowledge", run_id=r, parent_run_id=parents.get(r),
                                 root_run_id="r1" if r != "r1" else None) for r in ("r1", "r2", "r3", "r4")}
        for run_id in ("r1", "r2", "r3"):
            instance.add_run(runs[run_id])
        assert _lineage(runs["r4"], instance) == ("r3", "r2", "r1")
        assert _lineage(runs["r1"], instance) == ()
