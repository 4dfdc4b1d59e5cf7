"""raw_documents: the files of each namespace, hashed, with .ragignore applied and Git provenance."""

import dagster as dg

from assets.metadata import quarantine_table
from assets.stage import NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.sources import SOURCES_VERSION


@stage_asset(
    group="sources",
    kinds={"git", "python"},
    code_version=SOURCES_VERSION,
    reads_uploads=True,
    description="Every file of a namespace's sources with its size, SHA-256 and last Git commit; .ragignore "
    "patterns applied; empty and oversized files quarantined before anything reads them. First removes the "
    "temporary files a killed build left behind.",
)
def raw_documents(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict[str, NamespaceResult]:
    leftovers = build.clean_temporaries(ctx.settings)
    if leftovers:
        context.log.info(f"removed {len(leftovers)} temporary files left by killed builds: {leftovers[:5]}")
    records, failed = each_namespace(context, lambda ns: build.raw_documents(ctx, ns))
    return failed | {
        r.namespace: NamespaceResult({
            "files": len(r.files),
            "ignored_by_ragignore": r.ignored,
            "quarantined": len(r.quarantined),
            "quarantined_files": quarantine_table(r),
            "commit": (r.source_commit or "")[:12],
            "seconds": round(r.seconds, 3),
        })
        for r in records.values()
    }
