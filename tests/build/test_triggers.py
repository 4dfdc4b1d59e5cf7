"""Sensors and schedules evaluated as the daemon does: a bucket, a real Git repository, cursors, run keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import pytest

from knowledge_plane.build.triggers import COMMIT_TAG, RANGE_END, RANGE_START, contiguous_ranges, git_change
from knowledge_plane.storage.object_store import LocalObjectStore
from resources import build_resources
from sensors.git import GitWatch, git_sensor
from sensors.uploads import upload_sensor


def evaluate(sensor, settings, cursor=None, **extra_resources):
    with dg.build_sensor_context(cursor=cursor, resources={**build_resources(settings), **extra_resources}) as ctx:
        result = sensor(ctx)
    return result


def test_upload_sensor_runs_once_per_batch_of_changes(settings):
    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    assert isinstance(evaluate(upload_sensor, settings), dg.SkipReason)  # empty bucket, nothing to do
    store.put("uploads/default/pack-a/a.md", b"# A\n\nTexte.")
    store.put("uploads/default/pack-a/b.md", b"# B\n\nTexte.")
    first = evaluate(upload_sensor, settings)
    request = first.run_requests[0]
    assert request.tags["knowledge/modified"] == "2" and request.tags[RANGE_START] != request.tags[RANGE_END]
    assert isinstance(evaluate(upload_sensor, settings, first.cursor), dg.SkipReason)  # nothing new
    store.delete("uploads/default/pack-a/b.md")
    deleted = evaluate(upload_sensor, settings, first.cursor)
    assert deleted.run_requests[0].tags["knowledge/removed"] == "1"
    assert deleted.run_requests[0].run_key != request.run_key
    store.put("uploads/default/pack-a/a.md", b"# A\n\nTexte change.")
    changed = evaluate(upload_sensor, settings, deleted.cursor)
    assert changed.run_requests[0].tags["knowledge/modified"] == "1"
    store.put("uploads/other/pack-a/c.md", b"# C")  # another tenant's prefix is not ours
    assert isinstance(evaluate(upload_sensor, settings, changed.cursor), dg.SkipReason)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, corpus):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "corpus")
    return tmp_path


def commit(repo: Path, path: str, text: str) -> str:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", f"edit {path}")
    return git(repo, "rev-parse", "HEAD")


def test_git_sensor_builds_the_namespaces_a_commit_touches(settings, repo):
    watch = GitWatch(repository=str(repo), branch="main")
    first = evaluate(git_sensor, settings, git=watch)
    # the first tick (the UI just opened) starts nothing: it records where the branch is
    assert first.cursor == git(repo, "rev-parse", "HEAD") and first.run_requests == []
    assert "first tick" in first.skip_reason.skip_message
    sha = commit(repo, "knowledge/faq/nouvelle.json", '{"items": [{"question": "Q ?", "answer": "R."}]}')
    commit(repo, "knowledge/policies/garantie-pieces.md", "---\nid: policies.x.v1\n---\n# x\n\ny\n")
    head = git(repo, "rev-parse", "HEAD")
    result = evaluate(git_sensor, settings, cursor=first.cursor, git=watch)
    assert result.cursor == head and sha != head
    touched = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests]
    assert touched == [("knowledge:faq", "knowledge:faq"), ("knowledge:policies", "knowledge:policies")]
    assert all(r.tags[COMMIT_TAG] == head and head in r.run_key for r in result.run_requests)
    commit(repo, "README.md", "hors corpus")
    outside = evaluate(git_sensor, settings, cursor=head, git=watch)
    assert outside.run_requests == [] and outside.cursor != head
    assert isinstance(evaluate(git_sensor, settings, cursor=outside.cursor, git=watch), dg.SkipReason)


def test_git_change_survives_a_rewritten_history(repo, corpus):
    change = git_change(repo, "main", corpus, "0" * 40)  # a SHA Git does not have
    assert "knowledge:faq" in change.namespaces and "knowledge:vehicle" in change.namespaces


def test_contiguous_ranges():
    keys = ["a", "b", "c", "d", "e"]
    assert contiguous_ranges(keys, ["a", "b", "d"]) == [("a", "b"), ("d", "d")]
    assert contiguous_ranges(keys, keys) == [("a", "e")]


def test_nightly_schedule_rebuilds_every_namespace():
    from definitions import defs

    schedule = defs.resolve_schedule_def("nightly_rebuild")
    assert schedule.cron_schedule == "0 3 * * *"
    with dg.build_schedule_context() as ctx:
        request = schedule.evaluate_tick(ctx).run_requests[0]
    keys = defs.resolve_job_def("build_knowledge").partitions_def.get_partition_keys()
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (keys[0], keys[-1])


def test_git_sensor_watches_a_corpus_outside_the_project_in_its_own_repository(settings, corpus):
    """The corpus is its own repository, far from the project: the default watch is that repository."""
    git(corpus, "init", "-q", "-b", "main")
    git(corpus, "config", "user.email", "t@example.com")
    git(corpus, "config", "user.name", "t")
    git(corpus, "add", ".")
    git(corpus, "commit", "-q", "-m", "corpus")
    first = evaluate(git_sensor, settings, git=GitWatch())
    assert first.cursor == git(corpus, "rev-parse", "HEAD")
    head = commit(corpus, "faq/nouvelle.json", '{"items": [{"question": "Q ?", "answer": "R."}]}')
    result = evaluate(git_sensor, settings, cursor=first.cursor, git=GitWatch())
    assert result.cursor == head
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests] == [
        ("knowledge:faq", "knowledge:faq")
    ]


def test_git_sensor_skips_with_a_reason_when_the_corpus_is_not_in_the_watched_repository(settings, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    outside = evaluate(git_sensor, settings, git=GitWatch(repository=str(other)))
    assert isinstance(outside, dg.SkipReason) and "outside the watched repository" in outside.skip_message
    untracked = evaluate(git_sensor, settings, git=GitWatch())  # the corpus is in no repository at all
    assert isinstance(untracked, dg.SkipReason) and "not in a Git working copy" in untracked.skip_message
