"""Two builds at once, as two `knowledge build` processes on one data dir, registry and cache.

Stage records are per run, index versions are written by atomic rename and alias moves are
serialised and compare-and-set, so overlapping builds — on different namespaces or on the same
one — each publish a sound version and report it. On one namespace, the later build wins: the one
whose promotion came last (the last alias event) holds @latest, the other's version is @rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from knowledge_plane.build.records import AliasRecord, ChunksRecord, ParsedRecord, RawRecord
from knowledge_plane.build.stage_store import RecordFormatError, StageMissing, StageStore
from knowledge_plane.build.stages import BuildContext, verify_version
from knowledge_plane.storage.registry import LATEST, ROLLBACK, AliasMoved, alias_events

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def start_build(settings, corpus: Path, namespace: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "KNOWLEDGE_DATA_DIR": str(settings.paths.data_dir),
        "KNOWLEDGE_CORPUS_DIR": str(corpus),
        "DAGSTER_HOME": str(settings.paths.data_dir / "dagster"),
        "KNOWLEDGE_REGISTRY_URL": settings.registry.url.get_secret_value(),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "knowledge_plane.cli.main", "build", "--namespace", namespace, "--json"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    report = json.loads(out)
    [namespace] = report["namespaces"]
    [run_id] = report["run_ids"]
    return {**namespace, "run_id": run_id}


def overlapped(store: StageStore, namespace: str, first: str, second: str) -> bool:
    """Each run listed its files before the other finished: the two really ran at once."""
    def written(model, run_id):
        return store.path(model, namespace, run_id).stat().st_mtime

    return (written(RawRecord, first) < written(AliasRecord, second)
            and written(RawRecord, second) < written(AliasRecord, first))


def test_two_builds_of_different_namespaces_at_once(settings, corpus):
    faq, policies = (start_build(settings, corpus, ns) for ns in ("knowledge:faq", "knowledge:policies"))
    reports = {r["namespace"]: r for r in (finish(faq), finish(policies))}
    ctx = BuildContext(settings)
    aliases = ctx.registry.aliases()
    for namespace, report in reports.items():
        assert report["promoted"] and report["chunks"] > 0 and report["quarantined"] == []
        assert aliases[namespace][LATEST] == report["version"] == report["latest"]
        verify_version(ctx, namespace, report["version"])  # files, manifest and vectors sound
        # each report came from its own run's records
        assert ctx.stages.read_run(ParsedRecord, namespace, report["run_id"]).run_id == report["run_id"]
    assert reports["knowledge:faq"]["documents"] == 3 and reports["knowledge:policies"]["documents"] == 7


def test_two_builds_of_one_namespace_at_once_the_later_promotion_wins(settings, corpus, tmp_path):
    other = tmp_path / "other-knowledge"  # the same namespace with other content
    shutil.copytree(corpus, other)
    faq = json.loads((other / "faq" / "livraison.json").read_text(encoding="utf-8"))
    faq["items"].append({"question": "Livrez-vous le dimanche ?", "answer": "Non, jamais le dimanche."})
    (other / "faq" / "livraison.json").write_text(json.dumps(faq, ensure_ascii=False), encoding="utf-8")

    first, second = start_build(settings, corpus, "knowledge:faq"), start_build(settings, other, "knowledge:faq")
    a, b = finish(first), finish(second)
    ctx = BuildContext(settings)
    assert overlapped(ctx.stages, "knowledge:faq", a["run_id"], b["run_id"])
    assert a["version"] != b["version"]  # different content, different versions
    assert a["chunks"] + 1 == b["chunks"]  # each report describes its own corpus
    for report in (a, b):
        assert report["promoted"], report["reason"]
        verify_version(ctx, "knowledge:faq", report["version"])
    with ctx.registry.engine.connect() as db:
        moves = db.execute(sa.select(alias_events.c.latest_before, alias_events.c.latest_after)
                           .where(alias_events.c.namespace == "knowledge:faq")
                           .order_by(alias_events.c.id)).all()
    # "later" is the build that promoted last: its version is @latest, the other's @rollback
    assert [m.latest_after for m in moves] in ([a["version"], b["version"]], [b["version"], a["version"]])
    later, earlier = moves[-1].latest_after, moves[0].latest_after
    assert moves[-1].latest_before == earlier  # compare-and-set: the second move saw the first
    assert ctx.registry.aliases("knowledge:faq")["knowledge:faq"] == {LATEST: later, ROLLBACK: earlier}
    assert next(r for r in (a, b) if r["version"] == later)["latest"] == later


def test_a_stage_reads_only_its_own_runs_records(tmp_path):
    one, two = StageStore(tmp_path, "t", "run-1"), StageStore(tmp_path, "t", "run-2")
    one.write(ChunksRecord(namespace="knowledge:faq", chunks=[{"chunk_id": "a", "text": "un", "n_tokens": 1}]))
    two.write(ChunksRecord(namespace="knowledge:faq", chunks=[{"chunk_id": "b", "text": "deux", "n_tokens": 1}]))
    assert [c["chunk_id"] for c in one.read(ChunksRecord, "knowledge:faq").chunks] == ["a"]
    assert two.read(ChunksRecord, "knowledge:faq").run_id == "run-2"
    assert two.rows(ChunksRecord, "knowledge:faq", ["text"]) == [{"text": "deux"}]  # only the columns asked
    with pytest.raises(StageMissing, match="run-1"):
        one.read(ParsedRecord, "knowledge:faq")
    rerun = StageStore(tmp_path, "t", "run-3", lineage=("run-1",))  # a re-execution of run-1
    assert rerun.rows(ChunksRecord, "knowledge:faq", ["chunk_id"]) == [{"chunk_id": "a"}]
    rerun.write(ChunksRecord(namespace="knowledge:faq"))  # what it re-runs, it writes as its own
    assert rerun.read(ChunksRecord, "knowledge:faq").run_id == "run-3"
    assert one.read(ChunksRecord, "knowledge:faq").chunks  # the run it re-executes is left as it was
    path = one.path(ChunksRecord, "knowledge:faq")
    path.write_text(path.read_text().replace('"format_version":1', '"format_version":0'))
    with pytest.raises(RecordFormatError, match="format 0"):
        one.read(ChunksRecord, "knowledge:faq")


def test_old_runs_are_pruned_per_namespace_once_finished(tmp_path):
    def run(run_id: str, mtime: float, finished: bool = True) -> None:
        store = StageStore(tmp_path, "t", run_id)
        written = [store.write(RawRecord(namespace="knowledge:faq"))]
        if finished:
            written.append(store.write(AliasRecord(namespace="knowledge:faq")))
        for record in written:
            os.utime(store.path(type(record), "knowledge:faq"), (mtime, mtime))

    for i in range(6):
        run(f"old-{i}", 1000.0 + i)
    run("killed", 999.0, finished=False)  # silent for far longer than a day: abandoned
    run("running", 2e9, finished=False)  # still going, newest
    current = StageStore(tmp_path, "t", "current")
    pruned = current.prune("knowledge:faq", keep=3)
    assert sorted(pruned) == ["killed", "old-0", "old-1", "old-2", "old-3", "old-4"]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["old-5", "running"]


def test_an_alias_move_decided_from_a_stale_latest_is_refused(settings):
    registry = BuildContext(settings).registry
    for version in ("v1", "v2", "v3"):  # checked versions, never promoted
        manifest = {"fingerprint": version, "counts": {"chunks": 1, "documents": 1}, "checks": [],
                    "checks_passed": True}
        registry.add_version("knowledge:faq", version, settings.paths.indexes_dir / version, manifest)
    registry.promote("knowledge:faq", "v1", expected_latest=None)
    with pytest.raises(AliasMoved, match="from None to v1"):
        registry.promote("knowledge:faq", "v2", expected_latest=None)  # decided before v1 was promoted
    registry.promote("knowledge:faq", "v3", expected_latest="v1")
    assert registry.aliases("knowledge:faq")["knowledge:faq"] == {LATEST: "v3", ROLLBACK: "v1"}
