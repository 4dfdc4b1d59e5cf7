"""Crashes, for real: a `knowledge build` killed with SIGKILL at a chosen point, and what the next
build must make of what it left (a registered but unpromoted version, a run left STARTED,
half-written temporary files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from knowledge_plane.storage.registry import Registry
from tests.test_cli import PROJECT_ROOT, edit_faq, knowledge


@pytest.fixture
def pg_settings(settings, postgres_cluster):
    """The settings on a Postgres registry (the test needs its table locks), whatever the suite's mode."""
    from tests.facts.servers import create_database, drop_database

    if settings.registry.url.get_secret_value().startswith("postgresql"):
        yield settings
        return
    url = create_database(postgres_cluster, template=sa.make_url(postgres_cluster).database)
    yield settings.updated(registry={"url": url})
    drop_database(url)


def cli_env(settings) -> dict[str, str]:
    return {
        **os.environ,
        "KNOWLEDGE_DATA_DIR": str(settings.paths.data_dir),
        "KNOWLEDGE_CORPUS_DIR": str(settings.paths.corpus_dir),
        "DAGSTER_HOME": str(settings.paths.data_dir / "dagster"),
        "KNOWLEDGE_REGISTRY_URL": settings.registry.url.get_secret_value(),
    }


def run_statuses(settings) -> dict[str, str]:
    """{run id: status} on the instance the CLI used (its dagster.yaml reads DAGSTER_HOME)."""
    from dagster import DagsterInstance

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(settings.paths.data_dir / "dagster"))
        with DagsterInstance.get() as instance:
            return {run.run_id: run.status.value for run in instance.get_runs()}


def test_a_build_killed_right_after_registering_its_version(pg_settings, corpus):
    """SIGKILL while the build holds a registered, checked version it has not promoted yet. The test
    holds a SHARE lock on the aliases table: the build can register versions (index_versions) but
    blocks at its first alias move, so the kill lands between the two, every time."""
    settings = pg_settings
    first = json.loads(knowledge(settings, "build", "--namespace", "knowledge:faq", "--json").stdout)
    v1 = first["namespaces"][0]["version"]
    edit_faq(corpus, "Oui, sous 72 heures.")
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    engine = sa.create_engine(settings.registry.url.get_secret_value())
    with engine.begin() as lock:
        lock.execute(sa.text("LOCK TABLE aliases IN SHARE MODE"))
        build = subprocess.Popen(
            [sys.executable, "-m", "knowledge_plane.cli.main", "build", "--namespace", "knowledge:faq", "--json"],
            cwd=PROJECT_ROOT, env=cli_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 600
        while len(registry.versions("knowledge:faq")) < 2:
            assert build.poll() is None, build.communicate()
            assert time.monotonic() < deadline, "the build never registered its version"
            time.sleep(0.1)
        build.send_signal(signal.SIGKILL)
        build.wait()
    engine.dispose()
    v2 = registry.versions("knowledge:faq")[0]
    assert v2.version != v1 and v2.checks_passed
    assert registry.aliases()["knowledge:faq"]["latest"] == v1  # killed before its promotion
    killed = [run for run, status in run_statuses(settings).items() if status == "STARTED"]
    assert len(killed) == 1  # the dead process's run, still STARTED: it would hold the run queue

    again = knowledge(settings, "build", "--namespace", "knowledge:faq", "--json")
    assert again.returncode == 0, again.stderr
    faq = json.loads(again.stdout)["namespaces"][0]
    assert faq["version"] == v2.version and faq["promoted"], faq
    assert registry.aliases()["knowledge:faq"] == {"latest": v2.version, "rollback": v1}
    assert f"run {killed[0]} was left unfinished" in again.stderr
    assert run_statuses(settings)[killed[0]] == "FAILURE"


WRITER = """
import sys
from pathlib import Path
import numpy as np
from knowledge_plane.storage.index_store import write_version

def wait_here(tmp):  # the version's files are written, not yet renamed into place
    print(tmp, flush=True)
    sys.stdin.read()

write_version(Path(sys.argv[1]), {}, np.zeros((1, 384), np.float32), [{"chunk_id": "c"}], finish=wait_here)
"""


def start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    return writer, Path(writer.stdout.readline().strip())


def test_a_build_removes_the_temporary_files_of_killed_writers_only(settings, build_corpus):
    versions = settings.paths.indexes_dir / settings.tenant_id / "knowledge-faq"
    killed, killed_tmp = start_writer(versions / "v-killed")
    alive, alive_tmp = start_writer(versions / "v-alive")
    try:
        assert killed_tmp.is_dir() and alive_tmp.is_dir()
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        stage_tmp = settings.paths.stages_dir / f".raw_documents.json.tmp-{killed.pid}"  # same writer, another file
        stage_tmp.parent.mkdir(parents=True, exist_ok=True)
        stage_tmp.write_text("{")
        success, _ = build_corpus(settings, ["knowledge:faq"])
        assert success
        assert not killed_tmp.exists() and not stage_tmp.exists()
        assert alive_tmp.is_dir()  # a live writer's work in progress is left alone
    finally:
        alive.kill()
        alive.wait()
