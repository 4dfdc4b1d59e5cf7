"""The registry database's schema: one MetaData for every table, brought up to date by Alembic.

The tables are declared where they are used (knowledge_plane/storage/registry.py, knowledge_plane/storage/packs.py,
knowledge_plane/facts/sql_store.py), all on ``metadata`` below; their history is the migrations in
knowledge_plane/storage/migrations/versions/. ``upgrade`` runs ``alembic upgrade head`` the first time a process opens
a database, so the build plane needs no separate step; in production ``knowledge db upgrade`` runs
it once per release with the build credentials, and the query service, which may not create
tables, opens the registry with ``migrate=False``.

A database made before migrations existed (tables created by ``metadata.create_all``, no
``alembic_version``) is adopted: the tables of the initial revision it lacks are created, the ones
it has are kept, and it is stamped at the initial revision before the later ones run. Two
processes opening a new database at once are serialised by a lock held for the whole upgrade
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on Postgres): the second one finds it at head.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

metadata = sa.MetaData()

# The modules that declare tables on ``metadata``: importing them completes it.
TABLE_MODULES = ("knowledge_plane.storage.registry", "knowledge_plane.storage.packs", "knowledge_plane.facts.sql_store")
SCRIPT_LOCATION = "knowledge_plane.storage:migrations"  # a package resource: found wherever the package is installed
INITIAL_REVISION = "0001"
ADOPT_EXISTING = "adopt_existing"  # Config.attributes flag read by the initial revision
_POSTGRES_LOCK = 0x6B706C616E65  # pg_advisory_xact_lock key held while migrating ("kplane")

_upgraded: set[str] = set()  # URLs brought to head by this process
_upgrading = threading.Lock()


def target_metadata() -> sa.MetaData:
    """``metadata`` with every table declared on it: what autogenerate and the tests compare with."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return metadata


def ensure_sqlite_dir(url: str | sa.URL) -> None:
    """Create the directory of a SQLite file database (SQLite creates the file, not its directory)."""
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini); env.py migrates ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision of the migration scripts."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, f"no migration under {SCRIPT_LOCATION}"
    return revision


def current(target: sa.Engine | str) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    with _engine(target) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(target: sa.Engine | str) -> str:
    """Bring the database to the newest revision; returns it.

    Once per URL and process: a second call for a database this process already migrated does
    not touch it. A database already at head only has its ``alembic_version`` read, so a role
    without DDL rights can call this on a migrated database.
    """
    key = _cache_key(target)
    if key is not None and key in _upgraded:
        return head()
    with _upgrading, _engine(target) as engine:
        if key is None or key not in _upgraded:
            with engine.connect() as connection:
                if MigrationContext.configure(connection).get_current_revision() != head():
                    _migrate(connection)
            if key is not None:
                _upgraded.add(key)
    return head()


def _migrate(connection: sa.Connection) -> None:
    with _exclusive(connection):
        revision = MigrationContext.configure(connection).get_current_revision()  # read again, under the lock
        if revision == head():
            return
        config = alembic_config(connection)
        if revision is None and set(sa.inspect(connection).get_table_names()) & set(target_metadata().tables):
            config.attributes[ADOPT_EXISTING] = True
            command.upgrade(config, INITIAL_REVISION)
            config.attributes[ADOPT_EXISTING] = False
        command.upgrade(config, "head")


@contextmanager
def _exclusive(connection: sa.Connection) -> Iterator[None]:
    """One transaction holding the database's migration lock; committed when the block succeeds."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # pysqlite opens no transaction before DDL: take the write lock now, for the whole upgrade
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK})
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


@contextmanager
def _engine(target: sa.Engine | str) -> Iterator[sa.Engine]:
    if isinstance(target, sa.Engine):
        yield target
        return
    ensure_sqlite_dir(target)
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def _cache_key(target: sa.Engine | str) -> str | None:
    """The URL a migrated database is remembered by; None when it cannot be remembered.

    An in-memory SQLite database is new with each connection, and a SQLite file that does not
    exist (yet, or any more) has to be created: neither is taken from the cache.
    """
    url = target.url if isinstance(target, sa.Engine) else sa.make_url(target)
    if url.get_backend_name() == "sqlite" and (url.database in (None, "", ":memory:")
                                               or not Path(url.database).exists()):
        return None
    return url.render_as_string(hide_password=False)
