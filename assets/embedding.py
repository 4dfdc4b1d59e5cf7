"""chunk_embeddings: one batched encode over every uncached chunk of the run, all namespaces together."""

import dagster as dg

from assets.stage import NamespaceResult, each_namespace, stage_asset
from knowledge_plane.build import stages as build
from knowledge_plane.domain.embedding_model import DIMENSION, MODEL_NAME


@stage_asset(
    group="embedding",
    kinds={"pytorch", "huggingface"},
    code_version=f"{MODEL_NAME}@{DIMENSION}",
    deps=["document_chunks"],
    description="all-MiniLM-L6-v2 (384-d, offline) vectors for every chunk; a cache keyed by (model, text hash) "
    "means an unchanged chunk is never embedded twice, and the chunks of all namespaces share one batched encode.",
)
def chunk_embeddings(context: dg.AssetExecutionContext, ctx: build.BuildContext) -> dict[str, NamespaceResult]:
    # One call for the whole run: the encode is batched across namespaces; only the figures are split.
    chunks, failed = each_namespace(context, lambda ns: build.embedding_input(ctx, ns))
    result = build.chunk_embeddings(ctx, chunks, log=context.log.info)
    context.log.info(f"one encode for {len(result.namespaces)} namespace(s): {result.summary}")
    # The encode is shared: its rate and size go only on the partitions whose chunks it encoded, labelled
    # as the shared encode's, so an unchanged or empty namespace never shows another namespace's figures.
    shared = {f"shared_encode/{name}": result.summary[name]
              for name in ("chunks_embedded", "encode_seconds", "chunks_per_second", "tokens_per_second", "executor")}
    return failed | {
        ns: NamespaceResult({
            "chunks": r.chunks,
            "chunks_embedded": r.chunks_embedded,
            "chunks_cached": r.chunks_cached,
            "model": r.model or MODEL_NAME,
            "dimension": ctx.embedder.dimension,
            **(shared if r.chunks_embedded else {}),
        })
        for ns, r in result.namespaces.items()
    }
