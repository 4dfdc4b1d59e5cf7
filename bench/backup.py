"""`knowledge backup` / `knowledge restore` on a built data dir: objects, bytes and seconds.

    PYTHONPATH=. .venv/bin/python bench/backup.py DATA_DIR [--registry-url URL] [--repeat 3]

The backup goes to a local object store in a temporary directory and is restored into a fresh
temporary data dir with a SQLite registry (the data dir given is only read). Prints the median of
``--repeat`` runs of each step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from knowledge_plane.storage.backup import backup, restore, verify
from knowledge_plane.storage.object_store import LocalObjectStore
from knowledge_plane.storage.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--registry-url", help="default: the data dir's registry.db")
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = args.registry_url or f"sqlite:///{args.data_dir / 'registry.db'}"
    source = Registry(url, args.tenant)
    timings: dict[str, list[float]] = {"backup": [], "verify": [], "restore": []}
    report = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="kp-bench-backup-") as tmp:
            store = LocalObjectStore(Path(tmp) / "objects", "knowledge")
            started = time.perf_counter()
            report = backup(source, store)
            timings["backup"].append(time.perf_counter() - started)
            started = time.perf_counter()
            verify(store, args.tenant, report.backup_id)
            timings["verify"].append(time.perf_counter() - started)
            fresh = Path(tmp) / "fresh"
            target = Registry(f"sqlite:///{fresh / 'registry.db'}", args.tenant)
            started = time.perf_counter()
            restore(target, store, fresh / "indexes", report.backup_id)
            timings["restore"].append(time.perf_counter() - started)
            target.engine.dispose()
        time.sleep(1)  # backup ids are to the second
    assert report is not None
    print(f"{report.objects} objects, {report.bytes / 1e6:.2f} MB, {sum(report.tables.values())} rows, "
          f"{len(report.versions)} versions")
    for step, values in timings.items():
        print(f"{step:8s} median {statistics.median(values) * 1000:8.1f} ms  (min {min(values) * 1000:.1f})")


if __name__ == "__main__":
    main()
