"""index_versions: an immutable, checked version per namespace; its checks gate each namespace's alias.

A run covers many namespaces in one step, and Dagster's blocking checks gate a whole step: one
failing namespace would hold back every other. So the checks here are per namespace: each check
reports one row per namespace (a table in the UI), the step succeeds, and index_aliases promotes
exactly the namespaces whose version passed — then fails the run when any was held back.
"""

import dagster as dg

from assets.metadata import table, total
from assets.stage import stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.checks import CHECKS
from knowledge_plane.build.evaluation import evaluation_metadata
from knowledge_plane.build.records import IndexVersionRecord

_GATE = " Per namespace: a namespace that fails it is not promoted; the others are."
VERSION_COLUMNS = {
    "namespace": "string", "version": "string", "new": "bool", "chunks": "int", "documents": "int",
    "checks_passed": "bool",
}
CHECK_COLUMNS = {"namespace": "string", "version": "string", "passed": "bool", "detail": "string"}


def per_namespace_check_results(records: list[IndexVersionRecord]) -> list[dg.AssetCheckResult]:
    """One AssetCheckResult per check, failed when any namespace failed it, with a row per namespace
    saying which failed and why. Generic over the check list: a check added to the stage's records and
    to ``CHECKS`` needs nothing else here."""
    results = []
    for name in CHECKS:
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
                    "namespaces": table(rows, CHECK_COLUMNS),
                    "failed_namespaces": dg.MetadataValue.text(", ".join(failed) or "none"),
                    "namespaces_checked": len(rows),
                },
            )
        )
    return results


@stage_asset(
    group="indexing",
    kinds={"numpy", "sqlite"},
    deps=["chunk_embeddings", "extracted_facts"],
    check_specs=[
        # Not blocking: a blocking check fails the step, i.e. every namespace of the run at once.
        # The gate is per namespace, in index_aliases and in the registry (which refuses a failed version).
        dg.AssetCheckSpec(name, asset="index_versions", description=description + _GATE)
        for name, description in CHECKS.items()
    ],
    description="Memory-mappable vectors, payloads and a manifest (model, dimension, chunker version, source "
    "commit and hashes, counts, check results) written once per namespace content; unchanged content reuses "
    "its existing version. Its checks gate each namespace on its own: a namespace that fails one is held back "
    "by index_aliases, the others are promoted.",
)
def index_versions(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dg.MaterializeResult:
    records = [build.index_versions(ctx, ns, log=context.log.info) for ns in context.partition_keys]
    return dg.MaterializeResult(
        metadata={
            "versions": table(records, VERSION_COLUMNS),
            "new_versions": sum(1 for r in records if r.new),
            "chunks": total(records, "chunks"),
            "seconds": round(total(records, "seconds"), 3),
            **evaluation_metadata(records),  # evaluation/<namespace>/<figure>: plotted across runs
        },
        check_results=per_namespace_check_results(records),
    )
