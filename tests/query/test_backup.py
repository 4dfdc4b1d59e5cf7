"""``knowledge backup`` / ``knowledge restore``: a backup of the built corpus, taken into an S3 bucket
(moto on loopback, or MinIO with S3_ENDPOINT_URL), restored on a fresh data dir and registry, answers
the same questions with the same bytes; an altered or missing object is refused before anything is
written. With KNOWLEDGE_TEST_VECTOR_BACKEND=qdrant the restored side reads through Qdrant (local
mode, which has no snapshot API: the restore publishes the aliased versions from their files)."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import sqlalchemy as sa

from knowledge_plane.cli.main import main
from knowledge_plane.storage import schema
from knowledge_plane.storage.object_store import S3ObjectStore, s3_client
from knowledge_plane.storage.registry import Registry
from tests.query.support import registry_url_of
from tests.s3 import fresh_bucket_name

QUESTIONS = ["Combien de temps ai-je pour retourner une pièce ?", "alias latest rollback promote",
             "Quelle est la garantie sur une batterie ?"]
# What differs between two answers to one question by construction: the request's id and timing.
PER_REQUEST = ("request_id", "latency_ms")


@pytest.fixture
def bucket(s3_url):
    name = fresh_bucket_name()
    S3ObjectStore(s3_client(s3_url), name).ensure_bucket()
    return name


def use(monkeypatch, data, s3_url, bucket, vector_store: bool = False) -> None:
    """Point ``knowledge`` at ``data`` and the backup bucket, as an operator's environment would."""
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(data))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url_of(data))
    monkeypatch.setenv("KNOWLEDGE_OBJECT_STORE", "s3")
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_url)
    monkeypatch.setenv("KNOWLEDGE_BUCKET", bucket)
    if vector_store and os.environ.get("KNOWLEDGE_TEST_VECTOR_BACKEND") == "qdrant":
        monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
        monkeypatch.setenv("QDRANT_PATH", str(data / "qdrant"))
    else:
        monkeypatch.delenv("KNOWLEDGE_VECTOR_BACKEND", raising=False)


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out or out.err)


def answers(capsys) -> list[str]:
    out = []
    for question in QUESTIONS:
        code, response = run(capsys, "query", question, "--actor", "support_prod")
        assert code == 0, response
        out.append(json.dumps({k: v for k, v in response.items() if k not in PER_REQUEST}, sort_keys=True))
    return out


@pytest.fixture
def taken(built, embedder, s3_url, bucket, tmp_path, monkeypatch, capsys):
    """A backup of the built corpus, and the answers the built corpus gives (through a Qdrant of the
    test's own, which ``publish_aliases`` fills from the version files, in the Qdrant mode)."""
    monkeypatch.setattr("knowledge_plane.serving.query_encoder.QueryEncoder", lambda **_: embedder)
    use(monkeypatch, built, s3_url, bucket)
    code, report = run(capsys, "backup")
    assert code == 0, report
    if os.environ.get("KNOWLEDGE_TEST_VECTOR_BACKEND") == "qdrant":
        from knowledge_plane.settings import Settings
        from knowledge_plane.storage.backup import publish_aliases
        from knowledge_plane.storage.registry import Registry

        monkeypatch.setenv("KNOWLEDGE_VECTOR_BACKEND", "qdrant")
        monkeypatch.setenv("QDRANT_PATH", str(tmp_path / "original-qdrant"))
        assert publish_aliases(Registry(registry_url_of(built), "default"), Settings())
    return report, answers(capsys)


def test_a_restore_on_a_fresh_data_dir_answers_byte_for_byte_alike(taken, new_data_dir, tmp_path, s3_url, bucket,
                                                                    monkeypatch, capsys):
    report, before = taken
    assert report["tables"]["index_versions"] >= 6 and "query_log" not in report["tables"]
    assert any(v.startswith("knowledge:faq@") for v in report["versions"])

    fresh = new_data_dir(tmp_path / "fresh")
    # Another tenant already lives in the fresh registry, its alias events under the ids the backup's use.
    other = Registry(registry_url_of(fresh), "other")
    events = next(t for t in schema.target_metadata().sorted_tables if t.name == "alias_events")
    # Inserted through the id sequence as the registry does (explicit ids would leave a Postgres sequence
    # behind them), so they take the first ids, the ones the backup's events carry too.
    with other.engine.begin() as db:
        for _ in range(3):
            db.execute(events.insert().values(tenant_id="other", namespace="knowledge:hr", action="promote",
                                              at=dt.datetime(2026, 1, 1)))
        other_ids = sorted(db.execute(sa.select(events.c.id).where(events.c.tenant_id == "other")).scalars())
    assert other_ids == [1, 2, 3]
    use(monkeypatch, fresh, s3_url, bucket, vector_store=True)
    assert run(capsys, "backup", "--list")[1] == {"backups": [report["backup_id"]]}
    code, restored = run(capsys, "restore")  # the newest backup
    assert code == 0, restored
    assert restored["backup_id"] == report["backup_id"]
    assert restored["tables"] == report["tables"]
    assert sorted(restored["versions"]) == sorted(report["versions"])
    if os.environ.get("KNOWLEDGE_TEST_VECTOR_BACKEND") == "qdrant":
        assert restored["published"], "the aliased versions are published into the fresh Qdrant"
    assert answers(capsys) == before
    with other.engine.connect() as db:  # the other tenant's rows are untouched, and only them
        kept = db.execute(sa.select(events.c.id, events.c.namespace).where(events.c.tenant_id == "other")).all()
    assert sorted(kept) == [(i, "knowledge:hr") for i in other_ids]
    other.engine.dispose()

    # A second restore into the now populated registry is refused: a restore never merges.
    code, refused = run(capsys, "restore", report["backup_id"])
    assert code == 1 and "fresh registry" in refused["error"] and "index_versions" in refused["error"]


def test_a_corrupted_or_incomplete_backup_is_refused_before_anything_is_written(taken, new_data_dir, tmp_path,
                                                                                 s3_url, bucket, monkeypatch, capsys):
    report, _ = taken
    store = S3ObjectStore(s3_client(s3_url), bucket)
    vectors = next(i.key for i in store.list(report["prefix"]) if i.key.endswith("vectors.npy"))
    data = bytearray(store.get(vectors))
    data[-1] ^= 0xFF  # one flipped bit in one vector: same size, other content
    store.put(vectors, bytes(data))

    fresh = new_data_dir(tmp_path / "fresh")
    use(monkeypatch, fresh, s3_url, bucket, vector_store=True)
    code, refused = run(capsys, "restore", report["backup_id"])
    assert code == 1
    assert vectors[len(report["prefix"]):] in refused["error"] and "checksum" in refused["error"]
    assert not (fresh / "indexes").exists()
    code, _ = run(capsys, "query", QUESTIONS[0], "--actor", "support_prod")
    assert code == 1, "nothing was restored: the fresh data dir still has nothing to answer from"

    payloads = next(i.key for i in store.list(report["prefix"]) if i.key.endswith("payloads.jsonl"))
    store.delete(payloads)
    store.put(vectors, bytes(data[:-1]) + bytes([data[-1] ^ 0xFF]))  # the vectors back as they were
    code, refused = run(capsys, "restore", report["backup_id"])
    assert code == 1 and payloads[len(report["prefix"]):] in refused["error"] and "missing" in refused["error"]

    store.delete(report["prefix"] + "manifest.json")
    code, refused = run(capsys, "restore", report["backup_id"])
    assert code == 1 and "no manifest.json" in refused["error"]


def test_the_nightly_backup_job_writes_a_restorable_backup(built, s3_url, bucket):
    import dagster as dg

    from definitions import defs
    from jobs import backup_registry
    from knowledge_plane.storage.backup import list_backups, verify
    from resources import build_resources
    from tests.query.support import settings_for

    schedule = defs.resolve_schedule_def("nightly_backup")
    assert schedule.job_name == "backup_knowledge" and schedule.cron_schedule == "30 4 * * *"
    settings = settings_for(built).updated(object_store={"kind": "s3", "endpoint_url": s3_url, "bucket": bucket})
    context = dg.build_op_context(resources=build_resources(settings))
    backup_registry(context)
    store = S3ObjectStore(s3_client(s3_url), bucket)
    [backup_id] = list_backups(store, settings.tenant_id)
    manifest, blobs = verify(store, settings.tenant_id, backup_id)
    assert "registry/index_versions.jsonl" in blobs and len(blobs) == len(manifest["files"])
