"""Benchmark: the upload sensor's tick with 10,000 objects, on the local store and on an S3 server.

Prints figures; never a test. Usage: .venv/bin/python bench/sensors.py [--objects 10000]
The S3 side uses moto's server on loopback unless S3_ENDPOINT_URL points at a real MinIO.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dagster as dg  # noqa: E402

from knowledge_plane.settings import Settings  # noqa: E402
from knowledge_plane.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore, s3_client  # noqa: E402
from resources import build_resources  # noqa: E402
from sensors.uploads import upload_sensor  # noqa: E402
from tests.s3 import fresh_bucket_name, s3_endpoint  # noqa: E402


def fill(store: ObjectStore, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        store.put(f"uploads/default/pack-{i % 20:02d}/doc-{i:05d}.md", f"# Doc {i}\n\nTexte {i}.".encode())
    return time.perf_counter() - started


def ticks(settings: Settings, repeat: int) -> tuple[list[float], list[float]]:
    """(first-tick seconds: a change found, later ticks: nothing changed)."""
    changed, unchanged = [], []
    for _ in range(repeat):
        cursor = None
        for attempt in range(3):
            with dg.build_sensor_context(cursor=cursor, resources=build_resources(settings)) as ctx:
                started = time.perf_counter()
                result = upload_sensor(ctx)
                elapsed = time.perf_counter() - started
            if attempt == 0:
                changed.append(elapsed)
                cursor = result.cursor
            else:
                unchanged.append(elapsed)
    return changed, unchanged


def report(label: str, count: int, fill_s: float, changed: list[float], unchanged: list[float]) -> None:
    print(f"{label:6} {count:>6} objects  fill {fill_s:6.1f} s  "
          f"tick with change p50 {statistics.median(changed) * 1000:7.0f} ms  "
          f"tick without change p50 {statistics.median(unchanged) * 1000:7.0f} ms  max {max(unchanged) * 1000:7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(paths={"data_dir": Path(tmp)}, registry={"url": f"sqlite:///{tmp}/registry.db"})
        local = LocalObjectStore(base.paths.objects_dir, base.object_store.bucket)
        report("local", args.objects, fill(local, args.objects), *ticks(base, args.repeat))
        with s3_endpoint() as url:
            s3 = base.updated(object_store={"kind": "s3", "endpoint_url": url, "bucket": fresh_bucket_name()})
            store = S3ObjectStore(s3_client(url), s3.object_store.bucket)
            store.ensure_bucket()
            report("s3", args.objects, fill(store, args.objects), *ticks(s3, args.repeat))


if __name__ == "__main__":
    main()
