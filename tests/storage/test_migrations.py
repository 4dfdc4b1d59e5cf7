"""Alembic migrations of the registry database, each test on SQLite and on a throwaway Postgres."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from knowledge_plane.cli.main import main
from knowledge_plane.storage import schema
from knowledge_plane.storage.registry import (
    MissingRegistryTable,
    Registry,
    append_query_log,
    get_caller_app,
    index_versions,
    query_log,
)
from tests.conftest import PROJECT_ROOT
from tests.facts.servers import create_database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of an empty database: a SQLite file, or a new database on the session's Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return create_database(request.getfixturevalue("postgres_cluster"))


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_diffs(url: str) -> list:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), schema.target_metadata())
    finally:
        engine.dispose()


@pytest.fixture
def new_process(monkeypatch):
    """Forget which databases this process migrated, as a new process would; count Alembic runs."""
    runs: list[str] = []
    upgrade = command.upgrade
    monkeypatch.setattr(schema, "_upgraded", set())
    monkeypatch.setattr(command, "upgrade", lambda config, revision, **kw: (runs.append(revision),
                                                                              upgrade(config, revision, **kw)))
    return runs


def test_upgrade_from_empty_creates_every_table_at_head(empty_url, new_process):
    assert schema.current(empty_url) is None
    assert schema.upgrade(empty_url) == schema.head() == schema.current(empty_url)
    assert new_process == ["head"]
    assert tables(empty_url) == set(schema.target_metadata().tables) | {"alembic_version"}
    registry = Registry(empty_url, "default")
    assert all(get_caller_app(registry, name).active for name in ("aurora_nexus_ui", "unknown"))


def test_the_migrated_schema_is_the_metadata(empty_url):
    schema.upgrade(empty_url)
    assert schema_diffs(empty_url) == []


def test_a_second_upgrade_changes_nothing(empty_url, new_process):
    schema.upgrade(empty_url)
    schema.upgrade(empty_url)  # remembered by this process: not even read
    assert new_process == ["head"]
    new_process.clear()
    schema._upgraded.clear()
    assert schema.upgrade(empty_url) == schema.head()  # a new process reads the revision, runs nothing
    assert new_process == []
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [schema.head()]
    engine.dispose()


def initial_revision_tables(tmp_path) -> list[sa.Table]:
    """The tables ``metadata.create_all`` made before migrations existed: the initial revision's."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'initial.db'}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), schema.INITIAL_REVISION)
    names = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return [table for table in schema.target_metadata().sorted_tables if table.name in names]


def test_a_database_made_before_migrations_is_stamped_not_recreated(empty_url, new_process, tmp_path):
    old_tables = initial_revision_tables(tmp_path)
    new_process.clear()
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    schema.target_metadata().create_all(engine, tables=old_tables)  # what the code did before migrations
    with engine.begin() as db:
        db.execute(index_versions.insert().values(
            tenant_id="default", namespace="knowledge:faq", version="v1", created_at=sa.func.now(), path="/v1",
            fingerprint="f" * 64, chunks=1, documents=1, checks_passed=True, deleted=False, manifest="{}"))
    engine.dispose()
    assert schema.upgrade(empty_url) == schema.head()
    assert new_process == [schema.INITIAL_REVISION, "head"]
    assert [v.version for v in Registry(empty_url, "default").versions("knowledge:faq")] == ["v1"]
    assert schema_diffs(empty_url) == []


def test_an_old_database_gets_the_tables_it_never_created(empty_url):
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    schema.target_metadata().create_all(engine, tables=[index_versions])  # a registry that never had packs or facts
    engine.dispose()
    schema.upgrade(empty_url)
    assert tables(empty_url) == set(schema.target_metadata().tables) | {"alembic_version"}
    assert schema_diffs(empty_url) == []
    registry = Registry(empty_url, "default")
    assert get_caller_app(registry, "unknown").active
    _assert_append_only(registry)


def test_packs_of_an_older_database_keep_the_default_grant_only(empty_url):
    from knowledge_plane.storage.packs import Packs, packs

    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), schema.INITIAL_REVISION)
        connection.execute(packs.insert().values(tenant_id="default", pack_id="pack-a", name="pack-a", active=True,
                                                 created_at=sa.func.now()))
    engine.dispose()
    assert schema.upgrade(empty_url) == schema.head()
    registry = Registry(empty_url, "default")
    grants = Packs(registry.engine, "default")
    assert grants.allowed("pack-a") == {"knowledge:uploads": "L4"}  # the upgrade widens nothing
    grants.allow("pack-a", "knowledge:faq", "L2")
    assert grants.allowed("pack-a") == {"knowledge:uploads": "L4", "knowledge:faq": "L2"}


def _assert_append_only(registry: Registry) -> None:
    append_query_log(registry, [{"request_id": "r1", "actor": "chatbot_prod", "caller_app": "unknown",
                                 "question_sha256": "0" * 16, "status": "success", "latency_ms": 1.0}])
    for statement in (query_log.update().values(status="refused"), query_log.delete()):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), registry.engine.begin() as db:
            db.execute(statement)
    with registry.engine.connect() as db:
        assert db.execute(sa.select(query_log.c.status)).scalars().all() == ["success"]


def test_the_query_log_stays_append_only(empty_url):
    _assert_append_only(Registry(empty_url, "default"))


def test_downgrade_to_nothing_and_up_again(empty_url):
    schema.upgrade(empty_url)
    engine = sa.create_engine(empty_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        command.downgrade(schema.alembic_config(connection), "base")
    assert tables(empty_url) == {"alembic_version"}
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), "head")
    engine.dispose()
    assert schema_diffs(empty_url) == []
    _assert_append_only(Registry(empty_url, "default"))


def test_processes_opening_a_new_database_at_once_migrate_it_once(empty_url):
    start = time.time() + 3  # every process imports first, then they all upgrade at the same instant
    code = (f"import time; from knowledge_plane.storage.schema import upgrade; "
            f"time.sleep(max(0, {start} - time.time())); "
            f"print(upgrade({empty_url!r}))")
    processes = [subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err for _, err in results]
    assert {out.strip() for out, _ in results} == {schema.head()}
    assert schema_diffs(empty_url) == []


def test_the_query_service_can_open_the_registry_without_migrating(empty_url):
    registry = Registry(empty_url, "default", migrate=False)
    assert tables(empty_url) == set()
    with pytest.raises(MissingRegistryTable, match="caller_apps"):
        get_caller_app(registry, "unknown")
    schema.upgrade(empty_url)  # what `knowledge db upgrade` does with the build credentials
    assert get_caller_app(registry, "unknown").active


def test_db_cli(empty_url, monkeypatch, capsys):
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", empty_url)
    assert main(["db", "current", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"database": sa.make_url(empty_url).render_as_string(),
                                                   "current": None, "head": schema.head()}
    assert main(["db", "upgrade", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["to"] == schema.head()
    assert main(["db", "current"]) == 0
    assert f"{schema.head()} (newest: {schema.head()})" in capsys.readouterr().out


def test_migrations_ship_inside_the_package(tmp_path):
    """A normal (non-editable) install finds the migrations: script_location is a package resource."""
    source, target = tmp_path / "source", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "definitions.py"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    for package in ("knowledge_plane", "assets", "resources", "sensors", "jobs"):
        shutil.copytree(PROJECT_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, timeout=300)
    url = f"sqlite:///{tmp_path / 'installed.db'}"
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (f"import knowledge_plane.storage.schema as s; assert s.__file__.startswith({str(target)!r}); "
            f"print(s.upgrade({url!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == schema.head()
