"""Fact-store benchmark (issue 4, item 11): prints figures, never a test.

For each backend and size it loads N facts (one tenant; N/10 subject/predicate keys of ten facts
each, touching yearly validity periods), then measures:

- bulk ingestion: ``store.upsert_facts`` in batches of 10,000 (facts/s);
- ingestion with conflict detection: 5,000 more facts through ``upsert_facts`` +
  ``review.detect_and_store`` in batches of 500, each batch landing on existing keys (facts/s);
- conflict detection for one new fact: ``upsert_facts([fact])`` + ``detect_and_store`` on a random
  key, the new fact overlapping one period with another value, so an OVERRIDES relation and its
  audit entry are written every time (p50 / p95 / max ms);
- a point-in-time query: ``queries.facts_at`` for a random key and day (p50 / p95 / max ms).

Targets from the issue: p95 ≤ 50 ms for both queries, ingestion ≥ 1,000 facts/s.

    .venv/bin/python bench/facts.py                                  # 100k and 1M on SQLite and Postgres
    .venv/bin/python bench/facts.py --sizes 100000 --backends sqlite --queries 300
    .venv/bin/python bench/facts.py --postgres-url postgresql+psycopg://user@host/db --backends postgres

Postgres is a throwaway cluster started on loopback (tests/facts/servers.py) unless
--postgres-url is given; ``--backends bolt`` adds FalkorDB over Bolt for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge_plane.facts import review  # noqa: E402
from knowledge_plane.facts.model import APPROVED, Fact, fact_uuid  # noqa: E402
from knowledge_plane.facts.queries import facts_at  # noqa: E402
from knowledge_plane.facts.store import FactStore  # noqa: E402

TENANT = "bench"
NAMESPACE = "knowledge:bench"
PER_KEY = 10
START = dt.date(2000, 1, 1)


def _period(n: int) -> tuple[dt.date, dt.date | None]:
    start = START.replace(year=START.year + n)
    return start, (None if n == PER_KEY - 1 else START.replace(year=START.year + n + 1) - dt.timedelta(days=1))


def make_fact(key: int, n: int, value: float, doc: str, start: dt.date, until: dt.date | None,
              status: str = APPROVED) -> Fact:
    subject_key = f"service {key}"
    return Fact(
        id=fact_uuid(TENANT, doc, subject_key, "sla", value, start), tenant_id=TENANT, namespace=NAMESPACE,
        subject=subject_key, subject_key=subject_key, predicate="SLA", predicate_key="sla", object=f"{value * 100:g} %",
        value=value, unit="ratio", value_type="number", fact_type="SERVICE_LEVEL", source_document=doc,
        source_version="v1", source_path=f"{doc}.md", source_hash="0" * 16, status=status, confidence=0.9,
        valid_from=start, valid_until=until)


def corpus(size: int, batch: int = 10_000) -> Iterator[list[Fact]]:
    """N facts in batches: key k holds PER_KEY facts with touching yearly periods, from one doc each."""
    out: list[Fact] = []
    for i in range(size):
        key, n = divmod(i, PER_KEY)
        start, until = _period(n)
        out.append(make_fact(key, n, round(0.99 + n * 0.0005, 6), f"doc-{key}-{n}", start, until))
        if len(out) == batch:
            yield out
            out = []
    if out:
        yield out


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2), "n": len(ordered)}


def run_one(store: FactStore, size: int, queries: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    keys = size // PER_KEY
    started = time.perf_counter()
    loaded = 0
    for batch in corpus(size):
        loaded += len(store.upsert_facts(TENANT, batch))
        print(f"  loaded {loaded:,}/{size:,} ({loaded / (time.perf_counter() - started):,.0f} facts/s)",
              file=sys.stderr, end="\r")
    bulk_seconds = time.perf_counter() - started
    print(file=sys.stderr)

    # ingestion with detection: 5,000 facts on existing keys, batches of 500
    extra = []
    for i in range(5_000):
        key = rng.randrange(keys)
        n = rng.randrange(PER_KEY)
        start, until = _period(n)
        extra.append(make_fact(key, n, round(0.99 + n * 0.0005, 6), f"extra-{i}", start, until, status="proposed"))
    started = time.perf_counter()
    for at in range(0, len(extra), 500):
        batch = extra[at:at + 500]
        new = store.upsert_facts(TENANT, batch)
        review.detect_and_store(store, TENANT, [f for f in batch if f.id in set(new)])
    detect_ingest_seconds = time.perf_counter() - started

    detection: list[float] = []
    for i in range(queries):
        key = rng.randrange(keys)
        n = rng.randrange(PER_KEY - 1)
        start, _ = _period(n)
        fact = make_fact(key, n, 0.5, f"probe-{i}", start + dt.timedelta(days=100), None, status="proposed")
        t0 = time.perf_counter()
        store.upsert_facts(TENANT, [fact])
        review.detect_and_store(store, TENANT, [fact])
        detection.append(time.perf_counter() - t0)

    point: list[float] = []
    for _ in range(queries):
        key = rng.randrange(keys)
        day = START + dt.timedelta(days=rng.randrange(365 * PER_KEY))
        t0 = time.perf_counter()
        found = facts_at(store, TENANT, f"service {key}", "SLA", day)
        point.append(time.perf_counter() - t0)
        assert found, "every key holds one approved fact on every day of the covered decade"

    return {"size": size, "bulk_ingest_facts_per_s": round(size / bulk_seconds),
            "bulk_ingest_seconds": round(bulk_seconds, 1),
            "ingest_with_detection_facts_per_s": round(len(extra) / detect_ingest_seconds),
            "detect_one_new_fact": percentiles(detection), "point_in_time": percentiles(point)}


@contextlib.contextmanager
def open_store(backend: str, postgres_url: str | None) -> Iterator[FactStore]:
    if backend == "sqlite":
        from knowledge_plane.facts.sql_store import SqlFactStore

        with tempfile.TemporaryDirectory(prefix="bench-facts-") as tmp:
            store = SqlFactStore(f"sqlite:///{tmp}/facts.db")
            try:
                yield store
            finally:
                store.close()
    elif backend == "postgres":
        from knowledge_plane.facts.sql_store import SqlFactStore
        from tests.facts.servers import postgres_server

        with (contextlib.nullcontext(postgres_url) if postgres_url else postgres_server()) as url:
            store = SqlFactStore(url)
            try:
                if postgres_url:  # a given database keeps earlier runs: start from an empty tenant
                    store.delete_facts(TENANT, [f.id for f in store.list_facts(TENANT)])
                yield store
            finally:
                store.close()
    elif backend == "bolt":
        from knowledge_plane.facts.neo4j_store import Neo4jFactStore
        from tests.facts.servers import bolt_server

        with bolt_server() as uri:
            store = Neo4jFactStore(uri, connection_acquisition_timeout=5)
            try:
                yield store
            finally:
                store.close()
    else:
        raise SystemExit(f"unknown backend {backend!r}: sqlite, postgres or bolt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated fact counts")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres, bolt")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per measurement")
    parser.add_argument("--postgres-url", help="use this database instead of a throwaway cluster")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    results = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        for size in sizes:
            print(f"{backend}: {size:,} facts", file=sys.stderr)
            with open_store(backend, args.postgres_url) as store:
                result = {"backend": backend, **run_one(store, size, args.queries)}
            results.append(result)
            print(json.dumps(result), file=sys.stderr)
    header = f"{'backend':9} {'facts':>9} {'bulk f/s':>9} {'detect-ingest f/s':>18} " \
             f"{'detect p50/p95 ms':>18} {'at() p50/p95 ms':>16}"
    print(header)
    for r in results:
        d, p = r["detect_one_new_fact"], r["point_in_time"]
        print(f"{r['backend']:9} {r['size']:>9,} {r['bulk_ingest_facts_per_s']:>9,} "
              f"{r['ingest_with_detection_facts_per_s']:>18,} {d['p50_ms']:>8.2f}/{d['p95_ms']:<9.2f} "
              f"{p['p50_ms']:>7.2f}/{p['p95_ms']:<8.2f}")
    print(f"targets: p95 <= 50 ms, ingestion >= 1,000 facts/s; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
