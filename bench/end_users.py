"""Benchmark of the per-end-user rate limits: 200 end users behind one chatbot key.

    PYTHONPATH=. .venv/bin/python bench/end_users.py                       # 10k and 100k chunks
    PYTHONPATH=. .venv/bin/python bench/end_users.py --sizes 10000 --users 50 --workers 2

For each size a synthetic version of ``knowledge:faq`` is published (bench/query.py's generator;
thresholds opened so that every request goes the whole way), Debian's ``redis-server`` is started
on loopback and the service runs under ``uvicorn --workers N`` with
``KNOWLEDGE_RATE_LIMIT_STORAGE=redis://…``, so every worker counts the same budgets. Each simulated
end user (``X-End-User-ID``) sends 11 questions in a row with the chatbot_prod key, ``--clients``
users at a time. Expected: for every user, 10 answers then one 429; nobody else limited. The
actor's own budget is opened (KNOWLEDGE_RATE_LIMIT_PER_ACTOR_PER_MINUTE) so that it does not hide
the per-user one. The latencies are client-side, in ms: answered requests (limiter on), and the
429s (the limiter alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import query as query_bench  # noqa: E402 - after the path set-up above
from knowledge_plane.storage.registry import Registry  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-chatbot-key-000000000000"
PER_USER = 10
QUESTIONS = ["Combien de temps ai-je pour retourner une pièce ?", "Quelle est la garantie des plaquettes de frein ?",
             "Comment savoir si mes disques sont usés ?", "Quels sont les délais de livraison ?"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def run_size(size: int, users: int, clients: int, workers: int, workdir: Path) -> None:
    data = workdir / f"data-{size}"
    registry = Registry(f"sqlite:///{data / 'registry.db'}", "default")
    query_bench.NAMESPACE = "knowledge:faq"  # a namespace the chatbot reads
    version = query_bench.synthetic_version(registry, data, size, "eeeeee", seed=3)
    registry.promote("knowledge:faq", version)
    redis_port, port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "KNOWLEDGE_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1",
           "KNOWLEDGE_API_KEYS": f"chatbot_prod={KEY}", "KNOWLEDGE_RATE_LIMIT_PER_MINUTE": str(PER_USER),
           "KNOWLEDGE_RATE_LIMIT_PER_ACTOR_PER_MINUTE": "1000000", "KNOWLEDGE_SCORE_THRESHOLDS": "knowledge:*=-1",
           "KNOWLEDGE_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{redis_port}/0", "TOKENIZERS_PARALLELISM": "false",
           "KNOWLEDGE_VECTOR_BACKEND": "local"}
    env.pop("KNOWLEDGE_REGISTRY_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "knowledge_plane.service.main:app", "--host",
                               "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-proxy-headers",
                               "--log-level", "warning"], cwd=PROJECT_ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_port(redis_port, redis, 20)
        wait_port(port, server, 300)
        # Every worker loads the model and the version on its own: ready when 20 health checks in a
        # row, each on a new connection (spread over the workers by the kernel), say so.
        deadline, ready = time.monotonic() + 900, 0
        while ready < 20:
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not start serving")
            ready = ready + 1 if httpx.get(f"{url}/knowledge/health", timeout=5).status_code == 200 else 0
            time.sleep(0.1 if ready else 0.5)
        answered: list[float] = []
        limited: list[float] = []
        per_user: dict[str, list[int]] = {}
        lock = threading.Lock()

        def user(n: int) -> None:
            name = f"visitor-{n:04d}"
            codes = []
            with httpx.Client(base_url=url, headers={"X-API-Key": KEY, "X-End-User-ID": name}, timeout=60) as http:
                for i in range(PER_USER + 1):
                    started = time.perf_counter()
                    response = http.post("/knowledge/query", json={"question": QUESTIONS[(n + i) % len(QUESTIONS)]})
                    elapsed = (time.perf_counter() - started) * 1000
                    codes.append(response.status_code)
                    with lock:
                        (answered if response.status_code == 200 else limited).append(elapsed)
            per_user[name] = codes

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(user, range(users)))
        wall = time.perf_counter() - started
        expected = [200] * PER_USER + [429]
        wrong = {name: codes for name, codes in per_user.items() if codes != expected}
        totals = Counter(code for codes in per_user.values() for code in codes)
        print(f"\n== {size:,} chunks, {workers} workers, Redis, {users} end users × {PER_USER + 1} requests, "
              f"{clients} at a time (load average {os.getloadavg()[0]:.2f})")
        print(f"{sum(totals.values())} requests in {wall:.1f}s: {dict(sorted(totals.items()))}; "
              f"users limited exactly at their 11th request: {users - len(wrong)}/{users}")
        if wrong:
            print(f"   users with another sequence: {dict(list(wrong.items())[:5])}")
        print(f"   answered (limiter on) ms {query_bench.fmt(answered)}")
        print(f"   429 (limiter alone)   ms {query_bench.fmt(limited)}")
    finally:
        server.terminate()
        server.wait(60)
        redis.terminate()
        redis.wait(10)
        registry.engine.dispose()
        shutil.rmtree(data, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8, help="end users sending at the same time")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (Debian package redis-server)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="kp-end-users-") as workdir:
        for size in (int(s) for s in args.sizes.split(",")):
            run_size(size, args.users, args.clients, args.workers, Path(workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
