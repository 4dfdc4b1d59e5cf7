"""document_chunks: structure-aware chunks of at most 256 word pieces, ids derived from content."""

import dagster as dg

from assets.metadata import preview, table
from assets.stage import NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.build.chunking import CHUNKER_VERSION

PREVIEW_COLUMNS = {"chunk_id": "string", "location": "string", "tokens": "int", "text": "string"}


@stage_asset(
    group="chunking",
    kinds={"python"},
    code_version=CHUNKER_VERSION,
    deps=["parsed_documents"],
    description="Sections under their heading path for prose, one chunk per question/answer for FAQ, one per "
    "function or class for Python; units longer than the model's 256 word pieces are split, never truncated.",
)
def document_chunks(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict[str, NamespaceResult]:
    records, failed = each_namespace(context, lambda ns: build.document_chunks(ctx, ns))
    return failed | {
        r.namespace: NamespaceResult({
            "documents": r.documents,
            "chunks": len(r.chunks),
            "documents_rechunked": r.rechunked,
            "units": r.units,
            "would_have_been_truncated": r.would_truncate,
            "truncation_rate": round(r.would_truncate / r.units, 4) if r.units else 0.0,
            "chunks_over_limit": r.truncated,
            "duplicates_dropped": r.duplicates_dropped,
            "headings_cut_to_fit": r.headers_truncated,
            "mean_tokens": float(r.mean_tokens),
            "preview": table(
                (
                    {"chunk_id": c["chunk_id"][:12], "location": c["location"], "tokens": c["n_tokens"],
                     "text": preview(c["text"])}
                    for c in r.chunks[:3]
                ),
                PREVIEW_COLUMNS,
            ),
            "seconds": round(r.seconds, 3),
        })
        for r in records.values()
    }
