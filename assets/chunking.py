"""document_chunks: structure-aware chunks of at most 256 word pieces, ids derived from content."""

import dagster as dg

from assets.metadata import preview, table, total
from assets.stage import stage_asset
from knowledge_plane.build import stages as build

NAMESPACE_COLUMNS = {
    "namespace": "string", "documents": "int", "chunks": "int", "units": "int", "would_truncate": "int",
    "mean_tokens": "float",
}
PREVIEW_COLUMNS = {"namespace": "string", "chunk_id": "string", "location": "string", "tokens": "int", "text": "string"}


@stage_asset(
    group="chunking",
    kinds={"python"},
    deps=["parsed_documents"],
    description="Sections under their heading path for prose, one chunk per question/answer for FAQ, one per "
    "function or class for Python; units longer than the model's 256 word pieces are split, never truncated.",
)
def document_chunks(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict:
    records = [build.document_chunks(ctx, ns) for ns in context.partition_keys]
    units, would_truncate = total(records, "units"), total(records, "would_truncate")
    sample = (
        {
            "namespace": r.namespace,
            "chunk_id": c["chunk_id"][:12],
            "location": c["location"],
            "tokens": c["n_tokens"],
            "text": preview(c["text"]),
        }
        for r in records
        for c in r.chunks[:2]
    )
    return {
        "chunks": sum(len(r.chunks) for r in records),
        "documents_rechunked": total(records, "rechunked"),
        "would_have_been_truncated": would_truncate,
        "truncation_rate": round(would_truncate / units, 4) if units else 0.0,
        "chunks_over_limit": total(records, "truncated"),
        "duplicates_dropped": total(records, "duplicates_dropped"),
        "headings_cut_to_fit": total(records, "headers_truncated"),
        "namespaces": table(
            ({**r.model_dump(exclude={"chunks"}), "chunks": len(r.chunks)} for r in records), NAMESPACE_COLUMNS
        ),
        "preview": table(sample, PREVIEW_COLUMNS),
        "seconds": round(total(records, "seconds"), 3),
    }
