"""index_aliases: @latest and @rollback per namespace, switched atomically; the newest versions kept."""

import dagster as dg

from assets.metadata import table
from assets.stage import stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.checks import HELD_BACK_CHECK, HELD_BACK_DESCRIPTION

ALIAS_COLUMNS = {
    "namespace": "string", "latest": "string", "rollback": "string", "promoted": "bool", "reason": "string",
    "deleted_versions": "string",
}
HELD_BACK_COLUMNS = {"namespace": "string", "version": "string", "failed_checks": "string", "reason": "string"}


@stage_asset(
    group="publishing",
    kinds={"sqlite"},
    deps=["index_versions"],
    check_specs=[dg.AssetCheckSpec(HELD_BACK_CHECK, asset="index_aliases", blocking=True,
                                   description=HELD_BACK_DESCRIPTION)],
    description="Moves @latest to the namespace's checked version (the previous @latest becomes @rollback) in "
    "one transaction, namespace by namespace: a namespace whose version failed a check is held back, the others "
    "are promoted. Deletes versions beyond the newest kept ones.",
)
def index_aliases(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dg.MaterializeResult:
    records = [build.index_aliases(ctx, ns, log=context.log.info) for ns in context.partition_keys]
    held_back = [r for r in records if r.held_back]
    for r in held_back:
        context.log.error(f"{r.namespace}: {r.reason}")
    return dg.MaterializeResult(
        metadata={
            "promoted": sum(1 for r in records if r.promoted),
            "held_back": len(held_back),
            "aliases": table(records, ALIAS_COLUMNS),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=HELD_BACK_CHECK,
                passed=not held_back,
                description="held back: " + ", ".join(r.namespace for r in held_back) if held_back else None,
                metadata={
                    "held_back": table(
                        ({**r.model_dump(), "version": r.version or ""} for r in held_back), HELD_BACK_COLUMNS
                    ),
                    "promoted": ", ".join(r.namespace for r in records if r.promoted) or "none",
                },
            )
        ],
    )
