"""raw_documents: the files of each namespace, hashed, with .ragignore applied and Git provenance."""

import dagster as dg

from assets.metadata import md_table, quarantine_table
from assets.partitions import namespaces, single_run
from knowledge_plane.build import stages as build
from resources import KnowledgeBase, KnowledgeObjects


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="sources",
    kinds={"git", "python"},
    description="Every file of a namespace's sources with its size, SHA-256 and last Git commit; .ragignore "
    "patterns applied; empty and oversized files quarantined before anything reads them. First removes the "
    "temporary files a killed build left behind.",
)
def raw_documents(
    context: dg.AssetExecutionContext, knowledge: KnowledgeBase, objects: KnowledgeObjects
) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run, objects)
    leftovers = build.clean_temporaries(ctx.settings)
    if leftovers:
        context.log.info(f"removed {len(leftovers)} temporary files left by killed builds: {leftovers[:5]}")
    records = [build.raw_documents(ctx, ns) for ns in context.partition_keys]
    return dg.MaterializeResult(
        metadata={
            "stale_temporaries_removed": len(leftovers),
            "files": sum(len(r.files) for r in records),
            "ignored_by_ragignore": sum(r.ignored for r in records),
            "quarantined": sum(len(r.quarantined) for r in records),
            "quarantined_files": quarantine_table(records),
            "namespaces": md_table(
                [
                    {
                        "namespace": r.namespace,
                        "files": len(r.files),
                        "ignored": r.ignored,
                        "quarantined": len(r.quarantined),
                        "commit": (r.source_commit or "")[:12],
                    }
                    for r in records
                ],
                ["namespace", "files", "ignored", "quarantined", "commit"],
            ),
            "seconds": round(sum(r.seconds for r in records), 3),
        }
    )
