"""index_versions: an immutable, checked version per namespace; its checks gate each namespace's alias.

A run covers many namespaces in one step, and Dagster's blocking checks gate a whole step: one
failing namespace would hold back every other. So the checks here are per namespace: each check
reports one row per namespace (a table in the UI), the step succeeds, and index_aliases promotes
exactly the namespaces whose version passed — then fails the run when any was held back.
"""

import dagster as dg

from assets.metadata import md_table
from assets.partitions import namespaces, single_run
from knowledge_plane.build import stages as build
from knowledge_plane.build.checks import CHECK_NAMES
from knowledge_plane.build.evaluation import evaluation_metadata
from knowledge_plane.build.records import IndexVersionRecord
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
_GATE = " Per namespace: a namespace that fails it is not promoted; the others are."

_OUTCOMES = dg.TableSchema(
    columns=[
        dg.TableColumn("namespace", "string"),
        dg.TableColumn("version", "string"),
        dg.TableColumn("passed", "bool"),
        dg.TableColumn("detail", "string"),
    ]
)


def per_namespace_check_results(
    records: list[IndexVersionRecord], check_names: tuple[str, ...]
) -> list[dg.AssetCheckResult]:
    """One AssetCheckResult per check name, failed when any namespace failed it, with a row per
    namespace saying which failed and why. Generic over the check list: a check added to the
    stage's records and to ``check_names`` needs nothing else here."""
    results = []
    for name in check_names:
        rows = [
            {"namespace": r.namespace, "version": r.version or "", "passed": c["passed"], "detail": c["detail"]}
            for r in records
            for c in r.checks
            if c["name"] == name
        ]
        failed = [row["namespace"] for row in rows if not row["passed"]]
        results.append(
            dg.AssetCheckResult(
                check_name=name,
                passed=not failed,
                description=f"failed for {', '.join(failed)}" if failed else f"passed for {len(rows)} namespace(s)",
                metadata={
                    "namespaces": dg.MetadataValue.table([dg.TableRecord(row) for row in rows], schema=_OUTCOMES),
                    "failed_namespaces": dg.MetadataValue.text(", ".join(failed) or "none"),
                    "namespaces_checked": len(rows),
                },
            )
        )
    return results


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="indexing",
    kinds={"numpy", "sqlite"},
    deps=["chunk_embeddings", "extracted_facts"],
    check_specs=[
        # Not blocking: a blocking check fails the step, i.e. every namespace of the run at once.
        # The gate is per namespace, in index_aliases and in the registry (which refuses a failed version).
        dg.AssetCheckSpec(name, asset="index_versions", description=_CHECK_DESCRIPTIONS.get(name, name) + _GATE)
        for name in CHECK_NAMES
    ],
    description="Memory-mappable vectors, payloads and a manifest (model, dimension, chunker version, source "
    "commit and hashes, counts, check results) written once per namespace content; unchanged content reuses "
    "its existing version. Its checks gate each namespace on its own: a namespace that fails one is held back "
    "by index_aliases, the others are promoted.",
)
def index_versions(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    records = [build.index_versions(ctx, ns, log=context.log.info) for ns in context.partition_keys]
    return dg.MaterializeResult(
        metadata={
            "versions": md_table(
                [
                    {
                        "namespace": r.namespace,
                        "version": r.version,
                        "new": r.new,
                        "chunks": r.chunks,
                        "documents": r.documents,
                        "checks_passed": r.checks_passed,
                    }
                    for r in records
                ],
                ["namespace", "version", "new", "chunks", "documents", "checks_passed"],
            ),
            "new_versions": sum(1 for r in records if r.new),
            "chunks": sum(r.chunks for r in records),
            "seconds": round(sum(r.seconds for r in records), 3),
            **evaluation_metadata(records),  # evaluation/<namespace>/<figure>: plotted across runs
        },
        check_results=per_namespace_check_results(records, CHECK_NAMES),
    )
