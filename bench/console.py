"""Governance console benchmark: review-queue pages over a large fact store. Prints figures, never a test.

Loads N facts into one tenant (default 100,000: 60 % proposed, 5 % conflicted, the rest approved;
5 namespaces, 6 fact types, created over 90 days), signs a reviewer in, and times whole requests
through the ASGI app (routing, role check, query, template) with the same client the tests use:

- the queue's first page (50 rows, default filters: proposed + conflicted, oldest first);
- deep pages: following ``next_cursor`` 40 pages in (keyset: page 40 should cost what page 1 does);
- filtered pages: namespace + type, subject, critical types, older than 30 days, sort by subject;
- the REST API's first page (JSON instead of HTML).

    .venv/bin/python bench/console.py                      # 100k facts on SQLite
    .venv/bin/python bench/console.py --facts 20000 --repeat 20
    .venv/bin/python bench/console.py --registry-url postgresql+psycopg://user@host/db
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from knowledge_plane.console.app import create_app  # noqa: E402
from knowledge_plane.console.auth import hash_password  # noqa: E402
from knowledge_plane.console.config import ConsoleSettings  # noqa: E402
from knowledge_plane.facts.model import Fact, fact_uuid  # noqa: E402
from knowledge_plane.facts.sql_store import SqlFactStore  # noqa: E402
from knowledge_plane.settings import Settings  # noqa: E402

TENANT = "bench"
TYPES = ["SERVICE_LEVEL", "DURATION", "COST", "TEXT", "QUANTITY", "DATA_RETENTION"]


def facts(n: int) -> list[Fact]:
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(n):
        roll = rng.random()
        status = "proposed" if roll < 0.60 else "conflicted" if roll < 0.65 else "approved"
        subject, predicate, value = f"sujet {i // 10}", f"prédicat {i % 10}", float(i)
        created = now - dt.timedelta(days=rng.random() * 90)
        out.append(Fact(
            id=fact_uuid(TENANT, f"doc-{i // 50}", subject, predicate, value, None), tenant_id=TENANT,
            namespace=f"knowledge:ns{i % 5}", subject=subject, subject_key=subject, predicate=predicate,
            predicate_key=predicate, object=f"{i} jours", value=value, unit="day", value_type="number",
            fact_type=TYPES[i % len(TYPES)], source_document=f"doc-{i // 50}", source_version="v1",
            source_path=f"doc-{i // 50}.md", source_hash="h" * 16, status=status, confidence=rng.random(),
            created_at=created, updated_at=created))
    return out


def timed(client: TestClient, url: str, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return samples


def line(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{name:<44} p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   n={len(ordered)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--registry-url", default=None, help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    url = args.registry_url or f"sqlite:///{work / 'registry.db'}"
    store = SqlFactStore(url)
    started = time.perf_counter()
    batch = facts(args.facts)
    for i in range(0, len(batch), 10_000):
        store.upsert_facts(TENANT, batch[i:i + 10_000])
    print(f"loaded {args.facts} facts in {time.perf_counter() - started:.1f} s ({store.engine.dialect.name})")
    accounts = work / "accounts"
    accounts.write_text(f"rita:reviewer:{hash_password('bench')}\n")
    settings = Settings(paths={"data_dir": work / "data"}, registry={"url": url}, tenant_id=TENANT)
    app = create_app(settings, ConsoleSettings(secret="b" * 40, accounts_file=accounts))
    client = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "rita", "password": "bench", "csrf_token": token})

    print(line("queue, first page (HTML)", timed(client, "/queue", args.repeat)))
    deep, cursor = [], None
    for _ in range(40):
        page_url = "/api/v1/facts" + (f"?cursor={cursor}" if cursor else "")
        deep += timed(client, "/queue" + (f"?cursor={cursor}" if cursor else ""), 1)
        cursor = client.get(page_url).json()["next_cursor"]
    print(line("queue, pages 1-40 by cursor (HTML)", deep))
    for name, query in [("namespace + type", "namespace=knowledge:ns2&fact_type=DURATION"),
                        ("subject", "subject=sujet%204242"), ("critical types", "critical=true"),
                        ("older than 30 days", "age=30"), ("sort by subject", "sort=subject"),
                        ("sort by confidence", "sort=confidence")]:
        print(line(f"queue, {name} (HTML)", timed(client, f"/queue?{query}", args.repeat)))
    print(line("API /api/v1/facts first page (JSON)", timed(client, "/api/v1/facts", args.repeat)))
    store.close()


if __name__ == "__main__":
    main()
