"""Benchmark of the query service: latency, throughput, alias swap under load, memory, calibration.

    PYTHONPATH=. .venv/bin/python bench/query.py                    # 10k and 100k chunks + calibration
    PYTHONPATH=. .venv/bin/python bench/query.py --sizes 10000 --requests 200 --no-calibration
    PYTHONPATH=. .venv/bin/python bench/query.py --no-scale --calibration-backends local,qdrant

For each size a synthetic version is published (random unit vectors, French-like text drawn from
the sample corpus' vocabulary) and the real service runs under uvicorn in a subprocess; clients
are threads with one HTTP connection each, asking the calibration questions. Per-request stage
times come from the service's Server-Timing header (embed, search, serialise, total). The
thresholds are opened (KNOWLEDGE_SCORE_THRESHOLDS=knowledge:*=-1) because random vectors never
clear the calibrated ones: every request goes the whole way and returns ``top_k`` passages.

Then, under four clients, a new version of the same size is promoted: the report gives the time
until the first answer from it and the requests that failed meanwhile. RSS is the server
process' resident set (VmRSS) and its peak (VmHWM). Calibration runs the question sets of
``bench/calibration/`` through the engine on a build of the sample corpus; with
``--calibration-backends local,qdrant`` once more through the Qdrant adapter (the build's versions
published to qdrant-client's local mode), where Qdrant ranks and the same gate decides.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from knowledge_plane.serving.calibration import CALIBRATION_DIR, evaluate, load_questions
from knowledge_plane.serving.embedding import DIMENSION, MODEL_NAME
from knowledge_plane.serving.retrieval import write_search_index
from knowledge_plane.storage.index_store import version_dir, write_version
from knowledge_plane.storage.registry import Registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent

NAMESPACE = "knowledge:bench"
KEY = "bench-support-key-000000000000"
TOP_K = 5
WORDS_PER_CHUNK = 150  # about the size of a real chunk (≈ 220 word pieces)


# -- synthetic versions -------------------------------------------------------------------------
def corpus_vocabulary() -> list[str]:
    words: set[str] = set()
    for path in (PROJECT_ROOT / "knowledge").rglob("*.md"):
        words.update(w for w in re.findall(r"[^\W\d_]{3,}", path.read_text("utf-8").lower()))
    return sorted(words)


def synthetic_version(registry: Registry, data_dir: Path, size: int, tag: str, seed: int,
                      search_index: bool = True) -> str:
    """Write, register and promote a version of ``size`` chunks; returns its id."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array(corpus_vocabulary(), dtype=object)
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.1  # Zipf-like, as in real text
    weights /= weights.sum()
    vectors = rng.normal(size=(size, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads = []
    for start in range(0, size, 10_000):
        rows = vocabulary[rng.choice(len(vocabulary), size=(min(10_000, size - start), WORDS_PER_CHUNK), p=weights)]
        for offset, row in enumerate(rows):
            i = start + offset
            payloads.append({
                "chunk_id": f"{tag}{i:08d}", "doc_id": f"bench.doc.{i // 10}", "doc_version": tag,
                "title": f"Document synthétique {i // 10}", "namespace": NAMESPACE,
                "source_path": f"bench/{i // 10}.md", "heading_path": [f"Section {i % 10}"], "location": f"§ {i % 10}",
                "text": " ".join(row), "truth_level": ("L1", "L2", "L2", "L3")[i % 4], "tenant_id": registry.tenant_id,
                "pack_id": None, "source_app": "git", "lang": "fr", "updated": "2026-01-01", "kind": "text",
            })
    version = f"v20990101-{seed:06d}-{tag}"
    manifest = {"namespace": NAMESPACE, "version": version, "model": MODEL_NAME, "dimension": DIMENSION,
                "fingerprint": (tag * 64)[:64], "counts": {"documents": size // 10, "chunks": size},
                "checks": [], "checks_passed": True}
    path = version_dir(data_dir / "indexes", registry.tenant_id, NAMESPACE, version)
    write_version(path, manifest, vectors, payloads)
    if search_index:
        write_search_index(path)  # what the build plane writes beside each version
    registry.add_version(NAMESPACE, version, path, manifest)
    return version


# -- the service under test ---------------------------------------------------------------------
class Server:
    """``uvicorn knowledge_plane.service.main:app`` in a subprocess, configured for the benchmark."""

    def __init__(self, data_dir: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KNOWLEDGE_DATA_DIR": str(data_dir),
               "KNOWLEDGE_API_KEYS": f"support_prod={KEY}", "KNOWLEDGE_RATE_LIMIT_PER_MINUTE": "1000000000",
               "KNOWLEDGE_RATE_LIMIT_PER_ACTOR_PER_MINUTE": "1000000000",
               "KNOWLEDGE_SCORE_THRESHOLDS": "knowledge:*=-1", "KNOWLEDGE_ALIAS_POLL_SECONDS": "1",
               "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.pop("KNOWLEDGE_REGISTRY_URL", None)
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "knowledge_plane.service.main:app", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "warning"], cwd=PROJECT_ROOT, env=env,
            # one JSON line per request: kept beside the data, not on the benchmark's output
            stdout=(data_dir / "service.log").open("ab"), stderr=subprocess.STDOUT)

    def wait_serving(self, timeout: float = 600) -> float:
        while time.perf_counter() - self.started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/knowledge/health", timeout=2).status_code == 200:
                    return time.perf_counter() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("the service did not start serving")

    def memory_mib(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the server process in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = {k: int(v.split()[0]) / 1024 for k, v in (line.split(":", 1) for line in status.splitlines())
                  if k in ("VmRSS", "VmHWM")}
        return values["VmRSS"], values["VmHWM"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- load ----------------------------------------------------------------------------------------
class Load:
    """``clients`` threads asking questions until ``requests`` are answered or ``stop`` is set."""

    def __init__(self, url: str, questions: list[str], clients: int, requests: int | None):
        self.url, self.questions, self.clients, self.requests = url, questions, clients, requests
        self.latencies: list[float] = []
        self.stages: dict[str, list[float]] = {}
        self.failures: list[str] = []
        self.versions: list[tuple[float, str]] = []  # (time answered, version)
        self.stop = threading.Event()
        self._count = 0
        self._lock = threading.Lock()

    def _next(self) -> int | None:
        with self._lock:
            if self.stop.is_set() or (self.requests is not None and self._count >= self.requests):
                return None
            self._count += 1
            return self._count

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": KEY}, timeout=60) as client:
            while (n := self._next()) is not None:
                question = self.questions[n % len(self.questions)]
                started = time.perf_counter()
                try:
                    response = client.post("/knowledge/query", json={"question": question, "top_k": TOP_K})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                    continue
                body = response.json()
                with self._lock:
                    self.latencies.append(elapsed)
                    self.versions.append((time.perf_counter(), body["index_versions"].get(NAMESPACE, "")))
                    for part in response.headers.get("server-timing", "").split(","):
                        name, _, duration = part.strip().partition(";dur=")
                        if duration:
                            self.stages.setdefault(name, []).append(float(duration))

    def run(self) -> float:
        threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98]


def fmt(values: list[float]) -> str:
    p50, p95, p99 = percentiles(values)
    return f"p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}"


# -- scenarios -----------------------------------------------------------------------------------
def bench_size(size: int, requests: int, questions: list[str], workdir: Path, search_index: bool) -> dict:
    data = workdir / f"data-{size}"
    registry = Registry(f"sqlite:///{data / 'registry.db'}", "default")
    started = time.perf_counter()
    first = synthetic_version(registry, data, size, "aaaaaa", seed=1, search_index=search_index)
    registry.promote(NAMESPACE, first)
    print(f"\n== {size:,} chunks (version written in {time.perf_counter() - started:.1f}s; load average "
          f"{os.getloadavg()[0]:.2f} — other processes on the machine inflate every figure)", flush=True)
    server = Server(data)
    result: dict = {"size": size}
    try:
        result["start_s"] = server.wait_serving()
        print(f"serving after {result['start_s']:.1f}s (model load + version load + checks)")
        Load(server.url, questions, 1, 20).run()  # warm-up
        for clients in (1, 4):
            load = Load(server.url, questions, clients, requests)
            wall = load.run()
            ok = len(load.latencies)
            result[f"c{clients}"] = {"p": percentiles(load.latencies), "rps": ok / wall, "failed": len(load.failures),
                                     "stages": {k: percentiles(v) for k, v in load.stages.items()}}
            print(f"{clients} client(s): {ok} requests in {wall:.1f}s = {ok / wall:5.1f} req/s, "
                  f"{len(load.failures)} failed")
            print(f"   client latency ms   {fmt(load.latencies)}")
            for stage in ("embed", "search", "serialise", "total"):
                print(f"   server {stage:<9} ms {fmt(load.stages.get(stage, []))}")
        rss, peak = server.memory_mib()
        result["rss_mib"], result["peak_mib"] = rss, peak
        print(f"RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")

        second = synthetic_version(registry, data, size, "bbbbbb", seed=2, search_index=search_index)
        load = Load(server.url, questions, 4, None)
        runner = threading.Thread(target=load.run)
        runner.start()
        time.sleep(2)
        promoted = time.perf_counter()
        registry.promote(NAMESPACE, second)
        deadline = promoted + 120
        while time.perf_counter() < deadline and not any(v == second for _, v in load.versions[-8:]):
            time.sleep(0.05)
        swapped = next((t for t, v in load.versions if v == second and t >= promoted), None)
        time.sleep(2)
        load.stop.set()
        runner.join()
        result["swap"] = {"seconds": (swapped - promoted) if swapped else None, "failed": len(load.failures),
                          "requests": len(load.latencies), "p99": percentiles(load.latencies)[2]}
        rss_after, peak_after = server.memory_mib()
        result["rss_after_swap_mib"], result["peak_mib"] = rss_after, peak_after
        swap = result["swap"]
        waited = f"{swap['seconds']:.2f}s" if swap["seconds"] is not None else "NOT within 120 s"
        print(f"alias swap under 4 clients: new version served {waited} after the promote, "
              f"{swap['failed']} failed of {swap['requests']} requests, p99 {swap['p99']:.0f} ms during the swap")
        print(f"RSS after swap {rss_after:.0f} MiB (peak {peak_after:.0f} MiB)")
    finally:
        server.stop()
        registry.engine.dispose()
        shutil.rmtree(data, ignore_errors=True)
    return result


def calibration_data(requested: str | None, workdir: Path) -> Path:
    """A data dir holding a build of the sample corpus: the given one, else a fresh build."""
    if requested:
        return Path(requested)
    from knowledge_plane.cli.build import run_build
    from knowledge_plane.settings import Settings

    data = workdir / "corpus"
    settings = Settings(paths={"data_dir": data}, registry={"url": f"sqlite:///{data / 'registry.db'}"})
    print(f"building the sample corpus into {data} (embeddings are cached in {settings.paths.cache_dir}) …", flush=True)
    success, reports, _ = run_build(settings, [])  # the build job, as `knowledge build` runs it
    if not success:
        raise SystemExit(f"the build of the sample corpus failed: {[r for r in reports if not r['promoted']]}")
    return data


def qdrant_mirror(registry: Registry, workdir: Path):
    """The build's aliased versions published to a Qdrant local-mode store, aliases switched."""
    from knowledge_plane.serving.snapshot import current_aliases
    from knowledge_plane.storage.index_store import read_facts, read_version
    from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend

    backend = QdrantBackend.connect(path=str(workdir / "qdrant"), tenant_id="default", read_only=False)
    for namespace, version in current_aliases(registry).items():
        path = Path(registry.version(namespace, version).path)
        stored = read_version(path)
        backend.publish(namespace, version, stored.vectors, stored.payloads, read_facts(path))
        backend.switch_alias(namespace, version)
    return backend


def calibrate(data: Path, backend_name: str = "local", workdir: Path | None = None) -> None:
    from knowledge_plane.serving.snapshot import load_snapshot

    registry = Registry(f"sqlite:///{data / 'registry.db'}", "default")
    backend = qdrant_mirror(registry, workdir or data) if backend_name == "qdrant" else None
    try:
        snapshot, checks = load_snapshot(registry, backend=backend)
        if snapshot is None:
            raise SystemExit(f"{data} holds no servable build: {[c for c in checks if not c.passed]}")
        report_calibration(snapshot, backend_name, data)
    finally:
        if backend is not None:
            backend.close()


def report_calibration(snapshot, backend_name: str, data: Path) -> None:
    from knowledge_plane.serving.query_encoder import QueryEncoder
    from knowledge_plane.serving.query_engine import QueryEngine
    from knowledge_plane.serving.retrieval import RetrievalConfig

    config = RetrievalConfig()
    engine = QueryEngine(QueryEncoder(), config, "default")
    print(f"\n== calibration through the {backend_name} backend on {data} "
          f"({', '.join(f'{ns}@{v}' for ns, v in sorted(snapshot.aliases.items()))})")
    print(f"thresholds {dict(config.thresholds)}, score = {config.dense_share} × cosine + "
          f"{1 - config.dense_share:.1f} × lexical coverage")
    for label, suffix in (("tuning set", ""), ("first held-out set (then tuned on)", "_holdout"),
                          ("final held-out set", "_final")):
        on_topic, off_topic = load_questions(suffix=suffix)
        report = evaluate(engine, snapshot, on_topic, off_topic)
        print(f"{label}: on-topic answered {report.answered}/{report.on_topic} = {report.answered_rate:.1%} "
              f"(target ≥ 95 %); off-topic turned away {report.turned_away}/{report.off_topic} = "
              f"{report.turned_away_rate:.1%} (target ≥ 80 %)")
        for actor, question, status in report.misses:
            print(f"   miss: {actor:<13} {status:<20} {question}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    parser.add_argument("--corpus-data", help="a data dir with a build of the sample corpus (default: build one)")
    parser.add_argument("--no-calibration", action="store_true")
    parser.add_argument("--calibration-backends", default="local",
                        help="comma-separated: local, qdrant (the build mirrored into qdrant-client's local mode)")
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument("--no-search-index", action="store_true",
                        help="publish versions without search_index.npz (the service builds BM25 at load)")
    parser.add_argument("--json", action="store_true", help="also print the scale results as JSON")
    args = parser.parse_args(argv)
    questions = [q.text for q in load_questions(CALIBRATION_DIR)[0]]
    print(f"machine: {os.cpu_count()} cores; model {MODEL_NAME}; {len(questions)} questions; top_k {TOP_K}; "
          f"search_index.npz {'NOT written' if args.no_search_index else 'written'} beside each version")
    with tempfile.TemporaryDirectory(prefix="knowledge-bench-") as tmp:
        workdir = Path(tmp)
        results = [] if args.no_scale else [
            bench_size(int(s), args.requests, questions, workdir, not args.no_search_index)
            for s in args.sizes.split(",")]
        if args.json:
            print(json.dumps(results, indent=2, default=str))
        if not args.no_calibration:
            data = calibration_data(args.corpus_data, workdir)
            for backend_name in args.calibration_backends.split(","):
                calibrate(data, backend_name.strip(), workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
