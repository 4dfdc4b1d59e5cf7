"""Jobs: build every stage of the knowledge index, promote, and roll an alias back."""

import dagster as dg

from assets.partitions import namespaces
from core import build
from resources import KnowledgeBase

BUILD_JOB = "build_knowledge"

build_knowledge = dg.define_asset_job(
    BUILD_JOB,
    selection=dg.AssetSelection.assets(
        "raw_documents", "parsed_documents", "document_chunks", "chunk_embeddings", "index_versions", "index_aliases"
    ),
    partitions_def=namespaces,
    # One process for the whole run: the model loads once and every stage batches across namespaces.
    executor_def=dg.in_process_executor,
    description="Sources → parsed documents → chunks → embeddings → checked index versions → @latest.",
)


class RollbackConfig(dg.Config):
    namespace: str


@dg.op(description="Point @latest back at @rollback for one namespace (one transaction).")
def rollback_alias(context: dg.OpExecutionContext, config: RollbackConfig, knowledge: KnowledgeBase) -> None:
    result = build.rollback(knowledge.build_context(context.run.run_id), config.namespace)
    context.log.info(f"{result['namespace']}: @latest {result['from']} → {result['to']}")


@dg.job(description="Roll one namespace's @latest back to its @rollback version.")
def rollback_index() -> None:
    rollback_alias()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[build_knowledge, rollback_index])
