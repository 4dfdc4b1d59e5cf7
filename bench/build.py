"""Build benchmark (issues 2 and 15): prints figures, never a test.

On the sample corpus, 40 pages of Python's library documentation (Debian's ``python3.11-doc``) and
HTML pages of Debian's ``debian-handbook`` it measures our build and LlamaIndex's
IngestionPipeline (bench/llamaindex_pipeline.py) on the same files, in the same run:

- whole process (interpreter, imports and model load included): ``knowledge build --json`` and
  the LlamaIndex script as subprocesses, each on its own copy of the corpus and its own fresh
  state, no shared cache: full build, no-op rebuild, one-file change (a paragraph appended to
  one file); wall time and peak RSS of each process (``ru_maxrss`` from ``os.wait4``). The two
  pipelines alternate step by step (ours full, theirs full, ours no-op…), so a machine whose load
  changes during the run weighs on both alike; the ratio ours / theirs is printed per step;
- in process (models loaded and warmed up first): the same three builds, our embedding stage
  against each backend's raw encode (PyTorch ``SentenceTransformer.encode``, ONNX Runtime) on the
  same texts; with ``--llamaindex-in-process``, LlamaIndex's full run against raw ``encode`` on its
  own chunks.

    apt-get install -y python3.11-doc debian-handbook        # the public corpora, once
    .venv/bin/python bench/build.py [--corpus sample|python|handbook|all] [--pages N] [--skip-llamaindex]
                                    [--llamaindex-in-process] [--json FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from knowledge_plane.build import stages as build
from knowledge_plane.build.chunking import token_counter
from knowledge_plane.build.facts import extract_namespace_facts
from knowledge_plane.build.records import ChunksRecord
from knowledge_plane.build.secrets import find_secrets
from knowledge_plane.build.stage_store import StageStore
from knowledge_plane.facts.store import open_fact_store
from knowledge_plane.serving.embedding import (
    MAX_SEQ_TOKENS,
    Embedder,
    embedding_backend,
    installed_graph_runtimes,
    load_sentence_transformer,
    onnx_model_path,
)
from knowledge_plane.settings import PROJECT_ROOT, Settings

BENCH = Path(__file__).resolve().parent
HANDBOOK = Path("/usr/share/doc/debian-handbook/html")
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/library")
PYTHON_PAGES = 40  # the reference measurement: 39–40 pages of the library reference
# One language has too few pages: all of en-US gives about 1,540 chunks, fr-FR about 1,980.
HANDBOOK_LANGS = ("en-US", "fr-FR")
DEFAULT_PAGES = 160
LEFT_OUT_PAGES = {
    "index.html": "the table of contents: links, no prose",
    # Its two mdadm outputs ("Rebuild Status : 13% complete", then "47% complete") become facts
    # that contradict each other, and the blocking no_critical_conflicts check stops the build.
    "advanced-administration.html": "two mdadm outputs read as contradicting facts",
}
STEPS = ("full", "noop", "one_file")
PARAGRAPH = (
    "Benchmark edit: this paragraph was appended to measure a rebuild after a one-file change; "
    "only the chunks it touches should be embedded again."
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- corpora --------------------------------------------------------------------------------
@dataclass
class Corpus:
    """Files to copy under <dir>/knowledge/, the namespaces they make, and the file one edit changes."""

    name: str
    files: dict[str, Path]  # path under knowledge/ → source file
    namespaces: list[str]
    changed: str

    def materialize(self, work: Path) -> Path:
        """A private copy: every measured pipeline edits its own files and starts from nothing."""
        root = work / "knowledge"
        for rel, source in self.files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, root / rel)
        return root

    def change(self, root: Path) -> None:
        path = root / self.changed
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            text = text.replace("</body>", f"<p>{PARAGRAPH}</p></body>", 1)
        else:
            text = text.rstrip("\n") + f"\n\n{PARAGRAPH}\n"
        path.write_text(text, encoding="utf-8")

    def just_the_changed_file(self) -> Corpus:
        """A one-file corpus to warm up imports, tokenizers and models before anything is timed."""
        return Corpus(
            "warm-up", {self.changed: self.files[self.changed]}, [self.namespace_of(self.changed)], self.changed
        )

    @staticmethod
    def namespace_of(rel: str) -> str:
        return f"knowledge:{rel.split('/', 1)[0]}"


def sample_corpus() -> Corpus:
    source = PROJECT_ROOT / "knowledge"
    files = {p.relative_to(source).as_posix(): p for p in sorted(source.rglob("*")) if p.is_file()}
    namespaces = sorted({Corpus.namespace_of(rel) for rel in files})
    return Corpus("sample", files, namespaces, "policies/politique-retour.md")


def python_docs_corpus(pages: int = PYTHON_PAGES) -> Corpus:
    """``pages`` pages spread evenly over the sorted library reference (one namespace)."""
    if not PYTHON_DOCS.is_dir():
        sys.exit(f"{PYTHON_DOCS} is missing: apt-get install -y python3.11-doc")
    pages_in_order = sorted(PYTHON_DOCS.glob("*.html"))
    candidates = [p for p in pages_in_order if p.name != "index.html" and not has_password_example(p)]
    picked = [candidates[i * len(candidates) // pages] for i in range(pages)]
    files = {f"python/{p.name}": p for p in picked}
    changed = sorted(files, key=lambda rel: (files[rel].stat().st_size, rel))[len(files) // 2]
    return Corpus("python", files, ["knowledge:python"], changed)


def handbook_corpus(pages: int) -> Corpus:
    """``pages`` pages spread evenly over en-US then fr-FR, so any N is deterministic and mixed."""
    if not HANDBOOK.is_dir():
        sys.exit(f"{HANDBOOK} is missing: apt-get install -y debian-handbook")
    candidates = [
        page
        for lang in HANDBOOK_LANGS
        for page in sorted((HANDBOOK / lang).glob("*.html"))
        if page.name not in LEFT_OUT_PAGES and not has_password_example(page)
    ]
    count = min(pages, len(candidates))
    picked = [candidates[i * len(candidates) // count] for i in range(count)]
    files = {f"handbook/{p.parent.name}/{p.name}": p for p in picked}
    # Edit a page of median size: neither the cheapest nor the most expensive one to redo.
    changed = sorted(files, key=lambda rel: (files[rel].stat().st_size, rel))[len(files) // 2]
    return Corpus("handbook", files, ["knowledge:handbook"], changed)


def has_password_example(page: Path) -> bool:
    """Our build quarantines a page whose HTML matches a secret pattern and refuses to publish a
    chunk whose text does (a blocking check): such pages are left out for both pipelines, so both
    read the same files and the build succeeds. The extracted text catches what markup splits."""
    from bs4 import BeautifulSoup  # installed with docling

    html = page.read_text(encoding="utf-8")
    return bool(find_secrets(html) or find_secrets(BeautifulSoup(html, "html.parser").get_text("\n", strip=True)))


# -- whole processes ------------------------------------------------------------------------
# A child's ru_maxrss starts from the memory of the process that forked it (Linux carries the
# high-water mark across fork and exec), and this process holds models: measured processes are
# started by this few-MiB launcher, which times one and reports its rusage from wait4.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{time.perf_counter() - started} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_process(cmd: list[str], env: dict[str, str], logs: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one process; raises if it fails."""
    with open(f"{logs}.out", "w+", encoding="utf-8") as out, open(f"{logs}.err", "w+", encoding="utf-8") as err:
        launcher = [sys.executable, "-S", "-c", LAUNCHER, f"{logs}.rusage", *cmd]
        code = subprocess.run(launcher, env=env, stdout=out, stderr=err, cwd=PROJECT_ROOT).returncode
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{err.read()[-3000:]}")
        seconds, max_rss_kib = Path(f"{logs}.rusage").read_text(encoding="utf-8").split()
        return float(seconds), int(max_rss_kib) / 1024, out.read()


def clean_env(**values: str) -> dict[str, str]:
    """The environment without any KNOWLEDGE_*/DAGSTER_* setting: in particular no shared cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KNOWLEDGE_", "DAGSTER_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **values}


@dataclass
class Pipeline:
    """One pipeline's three rebuilds on its own copy of the corpus: ``after_full`` runs between the
    first two, while the state on disk is still the full build's."""

    root: Path
    build_once: Callable[[str], dict[str, Any]]
    after_full: Callable[[dict[str, Any]], None]


def three_rebuilds(corpus: Corpus, pipelines: list[Pipeline]) -> list[dict[str, Any]]:
    """Full build, no-op rebuild, then one appended paragraph and a rebuild, for each pipeline,
    alternating between them at every step so both see the same machine."""
    results: list[dict[str, Any]] = [{} for _ in pipelines]
    for step in STEPS:
        for pipeline, figures in zip(pipelines, results, strict=True):
            if step == "one_file":
                corpus.change(pipeline.root)
            figures[step] = pipeline.build_once(step)
            if step == "full":
                pipeline.after_full(figures["full"])
    return results


def seed_model_export(cache_dir: Path) -> None:
    """The ONNX export a machine makes once per model (keyed by the weights' hash, ~5 s with the
    torch import), put in place so a full build measures the pipeline; bench/embedding.py prints
    the export's own time."""
    with tempfile.TemporaryDirectory(prefix="kp-bench-export-") as tmp:
        export = onnx_model_path(Path(tmp))
        (cache_dir / "models").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export, cache_dir / "models" / export.name)


def ours_whole_process(corpus: Corpus, work: Path) -> Pipeline:
    root, data = corpus.materialize(work), work / "data"
    if embedding_backend() != "torch":
        seed_model_export(data / "cache")
    env = clean_env(KNOWLEDGE_DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster"), KNOWLEDGE_CORPUS_DIR=str(root))
    cmd = [str(Path(sys.executable).parent / "knowledge"), "build", "--json"]
    cmd += [arg for ns in corpus.namespaces for arg in ("--namespace", ns)]

    def build_once(step: str) -> dict[str, Any]:
        log(f"{corpus.name}: knowledge build, {step}")
        seconds, rss, out = run_process(cmd, env, work / step)
        report = json.loads(out)
        if not report["success"]:
            raise RuntimeError(f"knowledge build failed: {out[:2000]}")
        return {
            "seconds": round(seconds, 2),
            "peak_rss_mib": round(rss),
            "chunks": sum(r["chunks"] for r in report["namespaces"]),
            "chunks_embedded": sum(r["chunks_embedded"] for r in report["namespaces"]),
            "quarantined": sum(len(r["quarantined"]) for r in report["namespaces"]),
        }

    def count_tokens(full: dict[str, Any]) -> None:
        # Word pieces of what the full build chunked, from its run's stage records (the newest run).
        store = StageStore(data / "stages", "default", run_id="bench")
        chunks = [c for ns in corpus.namespaces
                  for c in store.read_run(ChunksRecord, ns, store.latest_run(ChunksRecord, ns), ["n_tokens"]).chunks]
        add_rates(full, sum(c["n_tokens"] for c in chunks))

    return Pipeline(root, build_once, count_tokens)


def llamaindex_whole_process(corpus: Corpus, work: Path) -> Pipeline:
    """Rates are added by the caller: the chunks' word pieces are counted in the in-process run."""
    root = corpus.materialize(work)
    cmd = [sys.executable, str(BENCH / "llamaindex_pipeline.py"), str(root), str(work / "state")]

    def build_once(step: str) -> dict[str, Any]:
        log(f"{corpus.name}: LlamaIndex script, {step}")
        seconds, rss, out = run_process(cmd, clean_env(), work / step)
        report = json.loads(out.strip().splitlines()[-1])
        return {
            "seconds": round(seconds, 2),
            "peak_rss_mib": round(rss),
            "chunks": report["vectors"],
            "chunks_embedded": report["nodes_embedded"],
        }

    return Pipeline(root, build_once, lambda full: None)


def add_rates(full: dict[str, Any], tokens: int) -> None:
    full["tokens"] = tokens
    full["chunks_per_s"] = round(full["chunks"] / full["seconds"], 1)
    full["tokens_per_s"] = round(tokens / full["seconds"])


# -- in process -----------------------------------------------------------------------------
class Models:
    """Loaded once for every in-process run: what is timed is the pipeline, not the model load."""

    def __init__(self, with_llamaindex: bool):
        self.embedder = Embedder()  # the build's default backend (KNOWLEDGE_EMBEDDING_BACKEND)
        self.embedder.encode(["warm-up"] * 4)
        self.model = load_sentence_transformer()  # raw PyTorch encode, the reference rate
        self.model.encode(["warm-up"] * 4, batch_size=32, normalize_embeddings=True)
        # Raw encode of each graph runtime: the exported graph alone, no cache.
        self.graphs = {name: Embedder(backend=name) for name in installed_graph_runtimes()}
        for embedder in self.graphs.values():
            embedder.encode(["warm-up"] * 4)
        self.llama_embedding = None
        if with_llamaindex:
            import llamaindex_pipeline as lp

            self.llama_embedding = lp.embed_model()
            self.llama_embedding.get_text_embedding("warm-up")


def word_pieces(text: str) -> int:
    """Counted as our chunk records' ``n_tokens`` are: [CLS] and [SEP] included, no truncation."""
    return token_counter().count(text) + 2


def raw_encode(model: Any, texts: list[str]) -> dict[str, Any]:
    """The model's own rate on exactly these texts: ``SentenceTransformer.encode``, or an
    ``Embedder``'s (which sorts by length and batches the same way)."""
    tokens = sum(word_pieces(t) for t in texts)
    started = time.perf_counter()
    if isinstance(model, Embedder):
        model.encode(texts)
    else:
        model.encode(texts, batch_size=32, normalize_embeddings=True)
    seconds = time.perf_counter() - started
    return rate({"seconds": round(seconds, 2), "chunks": len(texts), "tokens": tokens})


def rate(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        **figures,
        "chunks_per_s": round(figures["chunks"] / figures["seconds"], 1),
        "tokens_per_s": round(figures["tokens"] / figures["seconds"]),
    }


def ours_in_process(corpus: Corpus, work: Path, models: Models) -> dict[str, Any]:
    """The stages of ``build_knowledge`` called directly, in the job's order, without Dagster."""
    root, data = corpus.materialize(work), work / "data"
    settings = Settings.from_environ({}, paths={"data_dir": data, "corpus_dir": root},
                                     registry={"url": f"sqlite:///{data / 'registry.db'}"})
    measured: dict[str, Any] = {}

    def build_once(step: str) -> dict[str, Any]:
        ctx = build.BuildContext(settings, run_id=f"bench-{step}", embedder=models.embedder)
        started = time.perf_counter()
        for ns in corpus.namespaces:
            build.raw_documents(ctx, ns)
            build.parsed_documents(ctx, ns)
            build.document_chunks(ctx, ns)
        embed_started = time.perf_counter()
        summary = build.chunk_embeddings(ctx, corpus.namespaces).summary
        embed_seconds = time.perf_counter() - embed_started
        with open_fact_store(settings) as store:  # the extracted_facts stage
            for ns in corpus.namespaces:
                extract_namespace_facts(ctx, ns, store)
        for ns in corpus.namespaces:
            build.index_versions(ctx, ns)
            build.index_aliases(ctx, ns)
        seconds = time.perf_counter() - started
        if step == "full":  # the embedding stage on a fresh cache, timed around the whole stage call
            measured["embedding_stage"] = rate(
                {
                    "seconds": round(embed_seconds, 2),
                    "chunks": summary["chunks_embedded"],
                    "tokens": summary["tokens_embedded"],
                }
            )
        return {"seconds": round(seconds, 2), "chunks_embedded": summary["chunks_embedded"]}

    def raw_encode_same_texts(_: dict[str, Any]) -> None:
        # The distinct texts the stage embedded (it embeds each text once), read back from its input.
        texts = {}
        for ns in corpus.namespaces:
            for c in build.BuildContext(settings, run_id="bench-full").stages.read(ChunksRecord, ns).chunks:
                texts.setdefault(c["text_hash"], c["embed_text"])
        measured["raw_encode"] = raw_encode(models.model, list(texts.values()))
        for name, embedder in models.graphs.items():
            measured[f"raw_encode_{name}"] = raw_encode(embedder, list(texts.values()))

    [results] = three_rebuilds(corpus, [Pipeline(root, build_once, raw_encode_same_texts)])
    return finish_in_process(results, measured, "embedding_stage")


def llamaindex_in_process(corpus: Corpus, work: Path, models: Models) -> dict[str, Any]:
    import llamaindex_pipeline as lp
    from llama_index.core.schema import MetadataMode

    root = corpus.materialize(work)
    pipeline = lp.new_pipeline(models.llama_embedding)
    measured: dict[str, Any] = {}
    nodes: list[Any] = []

    def build_once(step: str) -> dict[str, Any]:
        started = time.perf_counter()
        ran = pipeline.run(documents=lp.load_documents(root))  # reading the files is part of a rebuild
        seconds = time.perf_counter() - started
        if step == "full":
            nodes.extend(ran)
        return {"seconds": round(seconds, 2), "chunks_embedded": len(ran)}

    def raw_encode_same_texts(full: dict[str, Any]) -> None:
        texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        measured["raw_encode"] = raw_encode(models.model, texts)
        # The pipeline has no separate embedding stage: its whole full run is its embedding rate.
        measured["pipeline_run"] = rate(
            {"seconds": full["seconds"], "chunks": len(texts), "tokens": measured["raw_encode"]["tokens"]}
        )
        measured["chunks_over_model_window"] = sum(word_pieces(t) > MAX_SEQ_TOKENS for t in texts)

    [results] = three_rebuilds(corpus, [Pipeline(root, build_once, raw_encode_same_texts)])
    return finish_in_process(results, measured, "pipeline_run")


def finish_in_process(results: dict[str, Any], measured: dict[str, Any], rated: str) -> dict[str, Any]:
    full = results["full"]["seconds"]
    for step in ("noop", "one_file"):
        results[step]["share_of_full"] = round(results[step]["seconds"] / full, 4)
    raw = measured["raw_encode"]["chunks_per_s"]
    return {
        **results,
        **measured,
        "ratio_to_raw_encode": round(measured[rated]["chunks_per_s"] / raw, 3),
        "full_build_ratio_to_raw_encode": round(results["full"]["chunks_embedded"] / full / raw, 3),
    }


# -- one corpus, end to end -----------------------------------------------------------------
def bench_corpus(corpus: Corpus, with_llamaindex: bool, llama_in_process: bool,
                 models: Callable[[], Models]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "corpus": {
            "name": corpus.name,
            "files": len(corpus.files),
            "namespaces": corpus.namespaces,
            "changed_file": corpus.changed,
        }
    }
    with tempfile.TemporaryDirectory(prefix=f"kp-bench-{corpus.name}-") as tmp:
        work = Path(tmp)
        pipelines = [ours_whole_process(corpus, work / "ours-process")]
        if with_llamaindex:
            pipelines.append(llamaindex_whole_process(corpus, work / "llama-process"))
        whole = three_rebuilds(corpus, pipelines)
        ours: dict[str, Any] = {"whole_process": whole[0]}
        llama: dict[str, Any] = {"whole_process": whole[1]} if with_llamaindex else {}
        loaded = models()
        warm = corpus.just_the_changed_file()
        log(f"{corpus.name}: in-process warm-up on {warm.changed}")
        ours_in_process(warm, work / "warm-ours", loaded)
        log(f"{corpus.name}: our stages in process")
        ours["in_process"] = ours_in_process(corpus, work / "ours-inproc", loaded)
        if with_llamaindex and llama_in_process:
            llamaindex_in_process(warm, work / "warm-llama", loaded)
            log(f"{corpus.name}: LlamaIndex pipeline in process")
            llama["in_process"] = llamaindex_in_process(corpus, work / "llama-inproc", loaded)
            # The whole-process chunks are the in-process ones: same splitter, same files.
            add_rates(llama["whole_process"]["full"], llama["in_process"]["raw_encode"]["tokens"])
    figures["ours"] = ours
    if with_llamaindex:
        figures["llamaindex"] = llama
        figures["ratio_to_llamaindex"] = {
            step: round(whole[0][step]["seconds"] / whole[1][step]["seconds"], 3) for step in STEPS
        }
    stage, raw = ours["in_process"]["embedding_stage"], ours["in_process"]["raw_encode"]
    figures["embedding_stage_over_raw_pytorch"] = round(stage["chunks_per_s"] / raw["chunks_per_s"], 3)
    return figures


# -- output ---------------------------------------------------------------------------------
def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _whole(step: dict[str, Any]) -> str:
    rates = f" · {_n(step['chunks_per_s'], 1)} chunks/s · {_n(step['tokens_per_s'])} tok/s" if "tokens" in step else ""
    return f"{step['seconds']:.1f} s · {_n(step['chunks_embedded'])} embedded{rates} · {_n(step['peak_rss_mib'])} MiB"


def _inproc(step: dict[str, Any]) -> str:
    share = f" ({step['share_of_full']:.1%} of full)" if "share_of_full" in step else ""
    return f"{step['seconds']:.2f} s · {_n(step['chunks_embedded'])} embedded{share}"


def _rate(r: dict[str, Any]) -> str:
    rates = f"{_n(r['chunks_per_s'], 1)} chunks/s · {_n(r['tokens_per_s'])} tok/s"
    return f"{r['seconds']:.1f} s · {_n(r['chunks'])} chunks · {rates}"


def _in_process(cell: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    return lambda s: cell(s["in_process"]) if "in_process" in s else "—"


def render(figures: dict[str, Any]) -> str:
    c, ours, llama = figures["corpus"], figures["ours"], figures.get("llamaindex")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("whole process: full build", lambda s: _whole(s["whole_process"]["full"])),
        ("whole process: no-op rebuild", lambda s: _whole(s["whole_process"]["noop"])),
        ("whole process: one-file change", lambda s: _whole(s["whole_process"]["one_file"])),
        ("in process: full build", _in_process(lambda s: _inproc(s["full"]))),
        ("in process: no-op rebuild", _in_process(lambda s: _inproc(s["noop"]))),
        ("in process: one-file change", _in_process(lambda s: _inproc(s["one_file"]))),
        (
            "embedding: our stage; LlamaIndex run",
            _in_process(lambda s: _rate(s.get("embedding_stage") or s["pipeline_run"])),
        ),
        ("raw PyTorch encode, same chunks", _in_process(lambda s: _rate(s["raw_encode"]))),
        ("raw OpenVINO encode, same chunks",
         _in_process(lambda s: _rate(s["raw_encode_openvino"]) if "raw_encode_openvino" in s else "—")),
        ("raw ONNX Runtime encode, same chunks",
         _in_process(lambda s: _rate(s["raw_encode_onnx"]) if "raw_encode_onnx" in s else "—")),
        ("  ratio to raw PyTorch encode", _in_process(lambda s: f"{s['ratio_to_raw_encode']:.1%}")),
        ("  full build ratio to raw PyTorch encode",
         _in_process(lambda s: f"{s['full_build_ratio_to_raw_encode']:.1%}")),
    ]
    header = ["", "ours (knowledge build)"] + (["LlamaIndex IngestionPipeline"] if llama else [])
    table = [header] + [[label, cell(ours)] + ([cell(llama)] if llama else []) for label, cell in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        f"== {c['name']}: {c['files']} files, namespaces {', '.join(c['namespaces'])}; one-file change edits "
        f"{c['changed_file']}",
        f"   ours: {_n(ours['in_process']['raw_encode']['chunks'])} chunks, "
        f"{_n(ours['in_process']['raw_encode']['tokens'])} word pieces"
        + (
            f"; LlamaIndex: {_n(llama['in_process']['raw_encode']['chunks'])} chunks, "
            f"{_n(llama['in_process']['raw_encode']['tokens'])} word pieces, "
            f"{llama['in_process']['chunks_over_model_window']} over the model's 256-piece window"
            if llama and "in_process" in llama
            else f"; LlamaIndex: {_n(llama['whole_process']['full']['chunks'])} chunks" if llama else ""
        ),
        "   whole process cells: wall time · chunks embedded · rates (full build) · peak RSS",
    ]
    if llama:
        ratios = figures["ratio_to_llamaindex"]
        lines.append("   ours / LlamaIndex, whole process: " + ", ".join(f"{k} {v:.2f}×" for k, v in ratios.items()))
    lines.append(f"   our embedding stage / raw PyTorch encode: {figures['embedding_stage_over_raw_pytorch']:.2f}×")
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import torch

    versions = {}
    for dist in (
        "torch",
        "openvino",
        "onnxruntime",
        "sentence-transformers",
        "transformers",
        "tokenizers",
        "dagster",
        "docling-slim",
        "llama-index-core",
        "llama-index-embeddings-huggingface",
        "beautifulsoup4",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "backend": embedding_backend(),
            "versions": versions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=("sample", "python", "handbook", "all"), default="all")
    parser.add_argument(
        "--pages",
        type=int,
        default=DEFAULT_PAGES,
        help=f"handbook pages, spread over {' then '.join(HANDBOOK_LANGS)} (default {DEFAULT_PAGES})",
    )
    parser.add_argument("--skip-llamaindex", action="store_true", help="measure our pipeline only")
    parser.add_argument("--llamaindex-in-process", action="store_true",
                        help="also run LlamaIndex in process (its raw encode rate on its own chunks)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    with_llamaindex = not args.skip_llamaindex
    if with_llamaindex:
        if importlib.util.find_spec("llama_index.embeddings.huggingface") is None:
            sys.exit(
                "LlamaIndex is missing: .venv/bin/pip install llama-index-core "
                "llama-index-embeddings-huggingface, or pass --skip-llamaindex"
            )

    loaded: list[Models] = []

    def models() -> Models:  # once, on first use: the whole-process runs need none
        if not loaded:
            loaded.append(Models(with_llamaindex))
        return loaded[0]

    corpora = []
    if args.corpus in ("sample", "all"):
        corpora.append(sample_corpus())
    if args.corpus in ("python", "all"):
        corpora.append(python_docs_corpus())
    if args.corpus in ("handbook", "all"):
        corpora.append(handbook_corpus(args.pages))
    report: dict[str, Any] = {"load_average_before": os.getloadavg(), "corpora": {}}
    for corpus in corpora:
        report["corpora"][corpus.name] = figures = bench_corpus(corpus, with_llamaindex, args.llamaindex_in_process,
                                                                models)
        print(render(figures) + "\n", flush=True)
    report["load_average_after"] = os.getloadavg()
    report["environment"] = environment()
    env = report["environment"]
    print(
        f"{env['cpus']} CPUs, torch threads {env['torch_threads']}, embedding backend {env['backend']}; "
        f"load average before "
        f"{report['load_average_before'][0]:.2f}, after {report['load_average_after'][0]:.2f}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
