"""parsed_documents: Docling, FAQ JSON, the PDF text layer and Python's ast, with quarantine."""

import dagster as dg

from assets.metadata import md_table, quarantine_table
from assets.partitions import namespaces, single_run
from knowledge_plane.build import stages as build
from resources import KnowledgeBase, KnowledgeObjects


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="parsing",
    kinds={"docling", "python"},
    deps=["raw_documents"],
    description="Each raw document parsed into sections under their heading path (front matter read first); "
    "a file whose hash is unchanged is taken from the parse cache; bad input is quarantined with its reason.",
)
def parsed_documents(
    context: dg.AssetExecutionContext, knowledge: KnowledgeBase, objects: KnowledgeObjects
) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run, objects)
    records = [build.parsed_documents(ctx, ns, log=context.log.warning) for ns in context.partition_keys]
    seconds = sum(r.seconds for r in records)
    parsed = sum(r.parsed for r in records)
    return dg.MaterializeResult(
        metadata={
            "documents": sum(len(r.documents) for r in records),
            "parsed_now": parsed,
            "from_cache": sum(r.from_cache for r in records),
            "quarantined": sum(len(r.quarantined) for r in records),
            "quarantined_files": quarantine_table(records),
            "documents_per_second": round(parsed / seconds, 1) if seconds else 0.0,
            "parser_notes": dg.MetadataValue.md("\n".join(f"- {n}" for r in records for n in r.notes) or "_none_"),
            "namespaces": md_table(
                [
                    {
                        "namespace": r.namespace,
                        "documents": len(r.documents),
                        "parsed_now": r.parsed,
                        "quarantined": len(r.quarantined),
                        "parsers": ", ".join(r.parsers),
                    }
                    for r in records
                ],
                ["namespace", "documents", "parsed_now", "quarantined", "parsers"],
            ),
            "seconds": round(seconds, 3),
        }
    )
