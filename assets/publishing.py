"""index_aliases: @latest and @rollback per namespace, switched atomically; the newest versions kept.

Each namespace's alias move is its own partition's materialization. A namespace held back by a failed
check is not materialized: the others are, then the step fails (so does the run, and CI), and Dagster
marks only the held-back partitions failed; their ``no_namespace_held_back`` check says why.
"""

import dagster as dg

from assets.stage import CheckOutcome, NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.checks import HELD_BACK_CHECK, HELD_BACK_DESCRIPTION
from knowledge_plane.build.records import AliasRecord


def _outcome(r: AliasRecord) -> NamespaceResult:
    metadata = {
        "version": r.version or "",
        "promoted": r.promoted,
        "latest": r.latest or "",
        "rollback": r.rollback or "",
        "reason": r.reason,
        "deleted_versions": ", ".join(r.deleted_versions),
    }
    check = CheckOutcome(
        HELD_BACK_CHECK,
        passed=not r.held_back,
        description=r.reason,
        metadata={**metadata, "failed_checks": ", ".join(r.failed_checks)},
    )
    return NamespaceResult(metadata, [check], materialized=not r.held_back, failure=r.reason)


@stage_asset(
    group="publishing",
    kinds={"sqlite"},
    deps=["index_versions"],
    check_specs=[(HELD_BACK_CHECK, HELD_BACK_DESCRIPTION, True)],
    description="Moves @latest to the namespace's checked version (the previous @latest becomes @rollback) in "
    "one transaction, namespace by namespace: a namespace whose version failed a check is held back (its "
    "partition fails, the others are materialized). Deletes versions beyond the newest kept ones.",
)
def index_aliases(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict[str, NamespaceResult]:
    records, failed = each_namespace(context, lambda ns: build.index_aliases(ctx, ns, log=context.log.info),
                                     final=True)
    for r in records.values():
        if r.held_back:
            context.log.error(f"{r.namespace}: {r.reason}")
    return failed | {ns: _outcome(r) for ns, r in records.items()}
