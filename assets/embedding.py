"""chunk_embeddings: one batched encode over every uncached chunk of the run, all namespaces together."""

import dagster as dg

from assets.metadata import table
from assets.stage import stage_asset
from knowledge_plane.build import stages as build

NAMESPACE_COLUMNS = {"namespace": "string", "chunks": "int", "chunks_embedded": "int", "chunks_cached": "int"}


@stage_asset(
    group="embedding",
    kinds={"pytorch", "huggingface"},
    deps=["document_chunks"],
    description="all-MiniLM-L6-v2 (384-d, offline) vectors for every chunk; a cache keyed by (model, text hash) "
    "means an unchanged chunk is never embedded twice, and the chunks of all namespaces share one batched encode.",
)
def chunk_embeddings(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict:
    result = build.chunk_embeddings(ctx, list(context.partition_keys), log=context.log.info)
    return {
        **result.summary,
        "dimension": ctx.embedder.dimension,
        "namespaces": table(result.namespaces.values(), NAMESPACE_COLUMNS),
    }
