"""document_chunks: structure-aware chunks of at most 256 word pieces, ids derived from content."""

import dagster as dg

from assets.metadata import md_table, preview
from assets.partitions import namespaces, single_run
from knowledge_plane.build import stages as build
from resources import KnowledgeBase


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="chunking",
    kinds={"python"},
    deps=["parsed_documents"],
    description="Sections under their heading path for prose, one chunk per question/answer for FAQ, one per "
    "function or class for Python; units longer than the model's 256 word pieces are split, never truncated.",
)
def document_chunks(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    records = [build.document_chunks(ctx, ns) for ns in context.partition_keys]
    units = sum(r.units for r in records)
    would_truncate = sum(r.would_truncate for r in records)
    sample = [
        {
            "namespace": r.namespace,
            "chunk_id": c["chunk_id"][:12],
            "location": c["location"],
            "tokens": c["n_tokens"],
            "text": preview(c["text"]),
        }
        for r in records
        for c in r.chunks[:2]
    ]
    return dg.MaterializeResult(
        metadata={
            "chunks": sum(len(r.chunks) for r in records),
            "documents_rechunked": sum(r.rechunked for r in records),
            "would_have_been_truncated": would_truncate,
            "truncation_rate": round(would_truncate / units, 4) if units else 0.0,
            "chunks_over_limit": sum(r.truncated for r in records),
            "duplicates_dropped": sum(r.duplicates_dropped for r in records),
            "headings_cut_to_fit": sum(r.headers_truncated for r in records),
            "namespaces": md_table(
                [
                    {k: getattr(r, k) for k in ("namespace", "documents", "units", "would_truncate", "mean_tokens")}
                    | {"chunks": len(r.chunks)}
                    for r in records
                ],
                ["namespace", "documents", "chunks", "units", "would_truncate", "mean_tokens"],
            ),
            "preview": md_table(sample, ["namespace", "chunk_id", "location", "tokens", "text"]),
            "seconds": round(sum(r.seconds for r in records), 3),
        }
    )
