"""The build plane's software-defined assets, one module per stage."""

import dagster as dg

from assets.chunking import document_chunks
from assets.embedding import chunk_embeddings
from assets.facts import extracted_facts
from assets.indexing import index_versions
from assets.parsing import parsed_documents
from assets.publishing import index_aliases
from assets.sources import raw_documents

BUILD_ASSETS = [
    raw_documents, parsed_documents, document_chunks, chunk_embeddings, extracted_facts, index_versions, index_aliases,
]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=BUILD_ASSETS)
