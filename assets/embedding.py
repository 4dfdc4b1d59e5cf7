"""chunk_embeddings: one batched encode over every uncached chunk of the run, all namespaces together."""

import dagster as dg

from assets.metadata import md_table
from assets.partitions import namespaces, single_run
from knowledge_plane.build import stages as build
from resources import KnowledgeBase


@dg.asset(
    partitions_def=namespaces,
    backfill_policy=single_run,
    group_name="embedding",
    kinds={"pytorch", "huggingface"},
    deps=["document_chunks"],
    description="all-MiniLM-L6-v2 (384-d, offline) vectors for every chunk; a cache keyed by (model, text hash) "
    "means an unchanged chunk is never embedded twice, and the chunks of all namespaces share one batched encode.",
)
def chunk_embeddings(context: dg.AssetExecutionContext, knowledge: KnowledgeBase) -> dg.MaterializeResult:
    ctx = knowledge.build_context(context.run)
    result = build.chunk_embeddings(ctx, list(context.partition_keys), log=context.log.info)
    return dg.MaterializeResult(
        metadata={
            **result.summary,
            "dimension": ctx.embedder.dimension,
            "namespaces": md_table([r.model_dump() for r in result.namespaces.values()],
                                   ["namespace", "chunks", "chunks_embedded", "chunks_cached"]),
        }
    )
