"""The embedding runtimes and the embedding cache: same vectors from ONNX Runtime and PyTorch, no
torch in a build that does not need it, and a build killed while embedding resumes where it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from knowledge_plane.build.records import ChunksRecord
from knowledge_plane.build.stages import (
    BuildContext,
    chunk_embeddings,
    document_chunks,
    parsed_documents,
    raw_documents,
)
from knowledge_plane.serving.embedding import MODEL_NAME, Embedder, EmbeddingCache, embedding_backend, onnx_model_path
from knowledge_plane.serving.query_encoder import QueryEncoder
from knowledge_plane.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NAMESPACES = ["knowledge:faq", "knowledge:guides", "knowledge:policies", "knowledge:diagnostic"]
MODEL_CACHE = Path(os.environ["KNOWLEDGE_CACHE_DIR"])  # the session's: the ONNX export is made once


def chunk_texts(settings, namespaces: list[str]) -> list[str]:
    ctx = BuildContext(settings.updated(paths={"cache_dir": settings.paths.data_dir / "private-cache"}))
    texts: dict[str, str] = {}
    for namespace in namespaces:
        raw_documents(ctx, namespace), parsed_documents(ctx, namespace), document_chunks(ctx, namespace)
        texts.update((c["text_hash"], c["embed_text"]) for c in ctx.stages.read(ChunksRecord, namespace).chunks)
    return list(texts.values())


def test_onnx_runtime_gives_the_pytorch_vectors_on_real_chunks(settings):
    texts = chunk_texts(settings, ["knowledge:faq", "knowledge:guides"])[:48]
    torch_vectors = Embedder(backend="torch").encode(texts)
    onnx_vectors = Embedder(backend="onnx", cache_dir=MODEL_CACHE).encode(texts)
    cosines = np.sum(torch_vectors * onnx_vectors, axis=1)
    assert len(texts) == 48 and cosines.min() >= 0.9999, cosines.min()
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    question = "Combien de temps ai-je pour retourner une pièce ?"
    by_query_encoder = QueryEncoder(backend="onnx", cache_dir=MODEL_CACHE).encode_query(question)
    assert float(by_query_encoder @ QueryEncoder(backend="torch").encode_query(question)) >= 0.9999


def test_openvino_runs_the_same_graph_to_the_same_vectors(settings):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    texts = chunk_texts(settings, ["knowledge:faq"])[:24]
    onnx_vectors = Embedder(backend="onnx", cache_dir=MODEL_CACHE).encode(texts)
    openvino_vectors = Embedder(backend="openvino", cache_dir=MODEL_CACHE).encode(texts)
    assert np.sum(onnx_vectors * openvino_vectors, axis=1).min() >= 0.99999  # fp32 both: bf16 gives ~0.99997
    question = "Livrez-vous en point relais ?"
    by_query_encoder = QueryEncoder(backend="openvino", cache_dir=MODEL_CACHE).encode_query(question)
    by_build = Embedder(backend="onnx", cache_dir=MODEL_CACHE).encode([question])[0]
    assert float(by_query_encoder @ by_build) >= 0.9999


def test_the_onnx_export_is_keyed_by_the_weights_and_made_once(tmp_path):
    first = onnx_model_path(MODEL_CACHE)
    made = first.stat().st_mtime_ns
    assert onnx_model_path(MODEL_CACHE) == first and first.stat().st_mtime_ns == made
    from knowledge_plane.serving.embedding import model_dir, weights_hash

    assert weights_hash(model_dir())[:16] in first.name


def test_a_process_waits_for_the_export_another_one_is_making(tmp_path):
    """The export lock (a file lock next to the graph): while another process exports, onnx_model_path
    waits, then takes the finished graph instead of exporting it a second time."""
    from knowledge_plane.serving.embedding import model_dir, weights_hash

    target = tmp_path / "models" / f"all-MiniLM-L6-v2-{weights_hash(model_dir())[:16]}.onnx"
    target.parent.mkdir()
    found: list[Path] = []
    other_exporter = FileLock(target.with_suffix(".lock"))
    with other_exporter:
        waiting = threading.Thread(target=lambda: found.append(onnx_model_path(tmp_path)), daemon=True)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not found  # blocked on the lock, not exporting
        target.write_bytes(b"the graph the other process wrote")
    waiting.join(60)
    assert found == [target] and target.read_bytes() == b"the graph the other process wrote"


def test_the_backend_setting(monkeypatch):
    assert embedding_backend("auto") == "onnx"  # onnxruntime is a dependency
    monkeypatch.setenv("KNOWLEDGE_EMBEDDING_BACKEND", "torch")
    backend = Settings().build.embedding_backend
    assert Embedder(backend=backend).backend == "torch" and QueryEncoder(backend=backend).backend == "torch"
    monkeypatch.setenv("KNOWLEDGE_EMBEDDING_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="KNOWLEDGE_EMBEDDING_BACKEND must be one of auto, onnx, openvino, torch"):
        Embedder(backend=Settings().build.embedding_backend)


def test_without_onnxruntime_auto_falls_back_to_pytorch(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without it looks like to import
    assert embedding_backend("auto") == "torch"
    with pytest.raises(RuntimeError, match="onnxruntime is not installed"):
        embedding_backend("onnx")
    vector = Embedder().encode(["Livrez-vous en point relais ?"])[0]
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


IMPORTS_AFTER_BUILD = """
import json, sys
from knowledge_plane.cli.main import main
try:
    main(sys.argv[1:])
finally:
    watched = ("torch", "sentence_transformers", "transformers", "openvino", "onnxruntime", "docling", "ray")
    print(json.dumps(sorted(m for m in watched if m in sys.modules)))
"""


def process_env(settings) -> dict[str, str]:
    """The environment of a build process over ``settings``' directories."""
    return {**os.environ, "KNOWLEDGE_DATA_DIR": str(settings.paths.data_dir),
            "KNOWLEDGE_CACHE_DIR": str(settings.paths.cache_dir),
            "KNOWLEDGE_CORPUS_DIR": str(settings.paths.corpus_dir),
            "KNOWLEDGE_REGISTRY_URL": settings.registry.url.get_secret_value(),
            "DAGSTER_HOME": str(settings.paths.data_dir / "dagster"), "PYTHONPATH": str(PROJECT_ROOT)}


def imports_of_a_build(settings, namespace: str) -> tuple[list[str], dict]:
    done = subprocess.run([sys.executable, "-c", IMPORTS_AFTER_BUILD, "build", "--namespace", namespace, "--json"],
                          cwd=PROJECT_ROOT, env=process_env(settings), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    *report, imported = done.stdout.strip().splitlines()
    return json.loads(imported), json.loads("\n".join(report))


def test_builds_import_torch_only_to_export_the_model_and_docling_only_for_documents_that_need_it(settings):
    # every chunk is new to it
    private = settings.updated(paths={"cache_dir": settings.paths.data_dir / "private-cache"})
    export = onnx_model_path(MODEL_CACHE)
    (private.paths.cache_dir / "models").mkdir(parents=True)
    os.link(export, private.paths.cache_dir / "models" / export.name)  # a machine that exported the model before
    imported, report = imports_of_a_build(private, "knowledge:faq")
    assert report["namespaces"][0]["chunks_embedded"] > 0
    assert "onnxruntime" in imported and "torch" not in imported and "sentence_transformers" not in imported
    assert "ray" not in imported  # the default executor (local) needs no cluster, even with the ray extra installed
    assert "docling" not in imported  # FAQ JSON needs no converter
    imported, report = imports_of_a_build(private, "knowledge:faq")
    # Nothing changed: no model, no runtime, no parser.
    assert report["namespaces"][0]["chunks_embedded"] == 0 and imported == []
    imported, report = imports_of_a_build(private, "knowledge:policies")
    # Markdown needs Docling, which would import transformers and torch through its converter.
    assert report["namespaces"][0]["chunks_embedded"] > 0
    assert "docling" in imported and "torch" not in imported and "transformers" not in imported


KILLED_BUILD = """
import sys
from pathlib import Path
from knowledge_plane.build.stages import (
    BuildContext,
    chunk_embeddings,
    document_chunks,
    parsed_documents,
    raw_documents,
)
from knowledge_plane.serving.embedding import Embedder
from knowledge_plane.settings import Settings

namespaces = sys.argv[2:]
ctx = BuildContext(Settings(), run_id="killed", embedder=Embedder(batch_size=4, cache_dir=Path(sys.argv[1])))
for namespace in namespaces:
    raw_documents(ctx, namespace), parsed_documents(ctx, namespace), document_chunks(ctx, namespace)
chunk_embeddings(ctx, namespaces, log=lambda line: print(line, flush=True))
"""


class RecordingEmbedder(Embedder):
    """The real model, remembering which texts it was asked to encode."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoded: list[str] = []

    def encode_batches(self, texts):
        self.encoded.extend(texts)
        yield from super().encode_batches(texts)


def test_a_build_killed_while_embedding_keeps_what_it_embedded(settings):
    private = settings.updated(paths={"cache_dir": settings.paths.data_dir / "private-cache"})  # nothing embedded yet
    build = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(MODEL_CACHE), *NAMESPACES], cwd=PROJECT_ROOT,
                             env=process_env(private), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    try:
        for line in build.stdout:  # kill -9 as soon as the first slice is reported embedded
            lines.append(line)
            if line.startswith("embedded "):
                os.kill(build.pid, signal.SIGKILL)
                break
    finally:
        build.kill()
        build.wait(timeout=60)
    assert build.returncode == -signal.SIGKILL and lines[-1].startswith("embedded "), lines
    time.sleep(0.1)
    cache = EmbeddingCache(private.paths.cache_dir / "embeddings.sqlite")
    kept = cache.count(MODEL_NAME)
    total = int(lines[0].split()[0])  # "<n> distinct chunk texts, 0 cached, <n> to embed"
    assert 0 < kept < total, (kept, total)

    embedder = RecordingEmbedder(cache_dir=MODEL_CACHE)
    # a re-execution of the killed run from its failed step: the chunks are those the killed run wrote
    ctx = BuildContext(private, run_id="rerun", embedder=embedder, run_lineage=("killed",))
    stored_before = set(cache.get_many(MODEL_NAME, _hashes(ctx)))
    summary = chunk_embeddings(ctx, NAMESPACES).summary
    assert summary["chunks_cached"] == kept and summary["chunks_embedded"] == total - kept
    assert len(embedder.encoded) == total - kept
    from knowledge_plane.domain.ids import text_hash

    assert not {text_hash(t) for t in embedder.encoded} & stored_before
    assert cache.count(MODEL_NAME) == total


def _hashes(ctx: BuildContext) -> list[str]:
    return [c["text_hash"] for ns in NAMESPACES for c in ctx.stages.read(ChunksRecord, ns).chunks]
