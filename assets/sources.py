"""raw_documents: the files of each namespace, hashed, with .ragignore applied and Git provenance."""

import dagster as dg

from assets.metadata import quarantine_table, table, total
from assets.stage import stage_asset
from knowledge_plane.build import stages as build

NAMESPACE_COLUMNS = {"namespace": "string", "files": "int", "ignored": "int", "quarantined": "int", "commit": "string"}


@stage_asset(
    group="sources",
    kinds={"git", "python"},
    reads_uploads=True,
    description="Every file of a namespace's sources with its size, SHA-256 and last Git commit; .ragignore "
    "patterns applied; empty and oversized files quarantined before anything reads them. First removes the "
    "temporary files a killed build left behind.",
)
def raw_documents(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict:
    leftovers = build.clean_temporaries(ctx.settings)
    if leftovers:
        context.log.info(f"removed {len(leftovers)} temporary files left by killed builds: {leftovers[:5]}")
    records = [build.raw_documents(ctx, ns) for ns in context.partition_keys]
    return {
        "stale_temporaries_removed": len(leftovers),
        "files": sum(len(r.files) for r in records),
        "ignored_by_ragignore": total(records, "ignored"),
        "quarantined": sum(len(r.quarantined) for r in records),
        "quarantined_files": quarantine_table(records),
        "namespaces": table(
            (
                {
                    "namespace": r.namespace,
                    "files": len(r.files),
                    "ignored": r.ignored,
                    "quarantined": len(r.quarantined),
                    "commit": (r.source_commit or "")[:12],
                }
                for r in records
            ),
            NAMESPACE_COLUMNS,
        ),
        "seconds": round(total(records, "seconds"), 3),
    }
