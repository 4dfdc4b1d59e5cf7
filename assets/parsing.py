"""parsed_documents: Docling, FAQ JSON, the PDF text layer and Python's ast, with quarantine."""

import dagster as dg

from assets.metadata import per_second, quarantine_table, table, total
from assets.stage import stage_asset
from knowledge_plane.build import stages as build

NAMESPACE_COLUMNS = {
    "namespace": "string", "documents": "int", "parsed_now": "int", "quarantined": "int", "parsers": "string",
}


@stage_asset(
    group="parsing",
    kinds={"docling", "python"},
    deps=["raw_documents"],
    reads_uploads=True,
    description="Each raw document parsed into sections under their heading path (front matter read first); "
    "a file whose hash is unchanged is taken from the parse cache; bad input is quarantined with its reason.",
)
def parsed_documents(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict:
    records = [build.parsed_documents(ctx, ns, log=context.log.warning) for ns in context.partition_keys]
    seconds = total(records, "seconds")
    return {
        "documents": sum(len(r.documents) for r in records),
        "parsed_now": total(records, "parsed"),
        "from_cache": total(records, "from_cache"),
        "quarantined": sum(len(r.quarantined) for r in records),
        "quarantined_files": quarantine_table(records),
        "documents_per_second": per_second(total(records, "parsed"), seconds),
        "parser_notes": dg.MetadataValue.md("\n".join(f"- {n}" for r in records for n in r.notes) or "_none_"),
        "namespaces": table(
            (
                {
                    "namespace": r.namespace,
                    "documents": len(r.documents),
                    "parsed_now": r.parsed,
                    "quarantined": len(r.quarantined),
                    "parsers": r.parsers,
                }
                for r in records
            ),
            NAMESPACE_COLUMNS,
        ),
        "seconds": round(seconds, 3),
    }
