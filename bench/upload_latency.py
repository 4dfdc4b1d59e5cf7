"""Benchmark: time from an upload to the document being queryable, with the real moving parts.

Starts a Dagster daemon on a temporary instance (the upload sensor at its default 30 s interval,
runs launched as the default run launcher does) and the query service; uploads a small document
into the local object store and polls POST /knowledge/query until a passage cites it. Prints
figures; never a test. Usage: .venv/bin/python bench/upload_latency.py [--uploads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge_plane.settings import Settings  # noqa: E402
from knowledge_plane.storage.object_store import LocalObjectStore  # noqa: E402

KEY = "bench-support-key-000000000001"
# Several sections on the same topic: an answer needs three passages above the threshold.
DOC = "".join(
    ["# Fiche atelier {n}\n\n"]
    + [
        f"## {title} du capteur {{word}}\n\n{text} du capteur {{word}}.\n\n"
        for title, text in (
            ("Remplacement", "Le remplacement se fait moteur froid, contact coupé, pour le démontage"),
            ("Couple", "Le couple de serrage est de 45 N·m pour la fixation"),
            ("Contrôle", "Après remplacement, effacer les codes défaut et contrôler la valeur"),
            ("Outils", "Une clé à douille longue de 22 mm sert au démontage"),
        )
    ]
)


def post(port: int, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/knowledge/query",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": KEY, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def wait_http(port: int, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/knowledge/health", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError("the query service did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=2)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "KNOWLEDGE_DATA_DIR": f"{tmp}/data",
            "DAGSTER_HOME": f"{tmp}/data/dagster",
            "KNOWLEDGE_API_KEYS": f"support_prod={KEY}",
            "KNOWLEDGE_RATE_LIMIT_PER_MINUTE": "100000",
            "HF_HUB_OFFLINE": "1",
        }
        started = time.perf_counter()
        subprocess.run(
            [bin_dir / "knowledge", "build", "--json"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"initial build of the sample corpus: {time.perf_counter() - started:.1f} s")
        procs = [
            subprocess.Popen(
                [bin_dir / "dagster-daemon", "run", "-w", "workspace.yaml"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
            subprocess.Popen(
                [bin_dir / "knowledge", "serve", "--port", str(args.port)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
        ]
        try:
            wait_http(args.port, 120)
            time.sleep(35)  # let the sensor's first tick see the empty bucket
            store = LocalObjectStore(Settings(paths={"data_dir": Path(f"{tmp}/data")}).paths.objects_dir, "knowledge")
            for n in range(args.uploads):
                word = f"bench{n}x{int(time.time())}"
                key = f"uploads/default/pack-bench/fiche-{n}.md"
                t0 = time.perf_counter()
                store.put(key, DOC.format(n=n, word=word).encode(), {"source_app": "bench"})
                while time.perf_counter() - t0 < args.timeout:
                    body = post(
                        args.port,
                        {"question": f"remplacement du capteur {word}", "pack_ids": ["pack-bench"], "top_k": 3},
                    )
                    if any(p["source_path"] == key for p in body["passages"]):
                        print(f"upload {n}: queryable after {time.perf_counter() - t0:.1f} s (status {body['status']})")
                        break
                    time.sleep(1)
                else:
                    print(f"upload {n}: NOT queryable after {args.timeout:.0f} s")
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
