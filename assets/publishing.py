"""index_aliases: @latest and @rollback per namespace, switched atomically; the newest versions kept."""

import dagster as dg

from assets.metadata import md_table
from assets.partitions import namespaces, single_run
from knowledge_plane.build import stages as build
from resources import KnowledgeBase

HELD_BACK_CHECK = "no_namespace_held_back"

_HELD_BACK = dg.TableSchema(
    columns=[
        dg.TableColumn("namespace", "string"),
        dg.TableColumn("version", "string"),
        dg.TableColumn("failed_checks", "string"),
        dg.TableColumn("reason", "string"),
    ]
)


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="publishing",
    kinds={"sqlite"},
    deps=["index_versions"],
    check_specs=[
        dg.AssetCheckSpec(
            HELD_BACK_CHECK,
            asset="index_aliases",
            blocking=True,
            description="Every namespace of the run whose version was checked reached @latest or was already "
            "there. Fails, after the sound namespaces are promoted, when a namespace was held back by a failed "
            "check, so the run (and CI) ends failed.",
        )
    ],
    description="Moves @latest to the namespace's checked version (the previous @latest becomes @rollback) in "
    "one transaction, namespace by namespace: a namespace whose version failed a check is held back, the others "
    "are promoted. Deletes versions beyond the newest kept ones.",
)
def index_aliases(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    records = [build.index_aliases(ctx, ns, log=context.log.info) for ns in context.partition_keys]
    held_back = [r for r in records if r.held_back]
    for r in held_back:
        context.log.error(f"{r.namespace}: {r.reason}")
    return dg.MaterializeResult(
        metadata={
            "promoted": sum(1 for r in records if r.promoted),
            "held_back": len(held_back),
            "aliases": md_table(
                [{**r.model_dump(), "deleted_versions": ", ".join(r.deleted_versions)} for r in records],
                ["namespace", "latest", "rollback", "promoted", "reason", "deleted_versions"],
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=HELD_BACK_CHECK,
                passed=not held_back,
                description="held back: " + ", ".join(r.namespace for r in held_back) if held_back else None,
                metadata={
                    "held_back": dg.MetadataValue.table(
                        [
                            dg.TableRecord(
                                {
                                    "namespace": r.namespace,
                                    "version": r.version or "",
                                    "failed_checks": ", ".join(r.failed_checks),
                                    "reason": r.reason,
                                }
                            )
                            for r in held_back
                        ],
                        schema=_HELD_BACK,
                    ),
                    "promoted": ", ".join(r.namespace for r in records if r.promoted) or "none",
                },
            )
        ],
    )
