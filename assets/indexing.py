"""index_versions: an immutable, checked version per namespace; its checks gate every alias move."""

import dagster as dg

from assets.metadata import md_table
from assets.partitions import namespaces, single_run
from core import build
from core.checks import CHECK_NAMES
from core.evaluation import evaluation_metadata
from resources import KnowledgeBase

_CHECK_DESCRIPTIONS = {
    "non_empty": "The version holds at least one chunk.",
    "dimension": "Vectors have the embedding model's dimension.",
    "finite_unit_norm": "Every vector is finite and unit-norm.",
    "unique_chunk_ids": "No two chunks share an id.",
    "no_empty_text": "No chunk has empty text.",
    "no_secrets": "No chunk of a knowledge:* namespace contains a secret.",
    "no_critical_conflicts": "No unresolved CONTRADICTS between facts of a critical type (rules.yaml).",
    "evaluation": "The namespace's golden questions (knowledge/<domain>/_golden.yaml) are still answered: no "
    "figure below its floor or more than the margin below @latest's.",
}


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="indexing",
    kinds={"numpy", "sqlite"},
    deps=["chunk_embeddings", "extracted_facts"],
    check_specs=[
        dg.AssetCheckSpec(name, asset="index_versions", blocking=True, description=_CHECK_DESCRIPTIONS[name])
        for name in CHECK_NAMES
    ],
    description="Memory-mappable vectors, payloads and a manifest (model, dimension, chunker version, source "
    "commit and hashes, counts, check results) written once per namespace content; unchanged content reuses "
    "its existing version. Blocking checks: a failure stops the run before any alias moves.",
)
def index_versions(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    records = [build.index_versions(ctx, ns, log=context.log.info) for ns in context.partition_keys]
    check_results = []
    for name in CHECK_NAMES:
        outcomes = [(r["namespace"], c) for r in records for c in r["checks"] if c["name"] == name]
        failed = [f"{ns}: {c['detail']}" for ns, c in outcomes if not c["passed"]]
        check_results.append(
            dg.AssetCheckResult(
                check_name=name,
                passed=not failed,
                metadata={
                    "failures": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed) or "_none_"),
                    "namespaces_checked": len(outcomes),
                },
            )
        )
    return dg.MaterializeResult(
        metadata={
            "versions": md_table(
                [
                    {
                        "namespace": r["namespace"],
                        "version": r["version"],
                        "new": r["new"],
                        "chunks": r["chunks"],
                        "documents": r["documents"],
                        "checks_passed": r["checks_passed"],
                    }
                    for r in records
                ],
                ["namespace", "version", "new", "chunks", "documents", "checks_passed"],
            ),
            "new_versions": sum(1 for r in records if r["new"]),
            "chunks": sum(r["chunks"] for r in records),
            "seconds": round(sum(r["seconds"] for r in records), 3),
            **evaluation_metadata(records),  # evaluation/<namespace>/<figure>: plotted across runs
        },
        check_results=check_results,
    )
