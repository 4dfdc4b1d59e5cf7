"""index_aliases: @latest and @rollback per namespace, switched atomically; the newest versions kept."""

import dagster as dg

from assets.metadata import md_table
from assets.partitions import namespaces, single_run
from core import build
from resources import KnowledgeBase


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="publishing",
    kinds={"sqlite"},
    deps=["index_versions"],
    description="Moves @latest to the run's new version (the previous @latest becomes @rollback) in one "
    "transaction, only for versions that passed every check; deletes versions beyond the newest kept ones.",
)
def index_aliases(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    records = [build.index_aliases(ctx, ns, log=context.log.info) for ns in context.partition_keys]
    return dg.MaterializeResult(
        metadata={
            "promoted": sum(1 for r in records if r["promoted"]),
            "aliases": md_table(
                [{**r, "deleted_versions": ", ".join(r["deleted_versions"])} for r in records],
                ["namespace", "latest", "rollback", "promoted", "reason", "deleted_versions"],
            ),
        }
    )
