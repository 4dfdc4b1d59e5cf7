"""The registry: index versions, the aliases that point at them, documents, caller apps, query log.

SQLite by default and Postgres in production, through the same SQLAlchemy Core statements. The
aliases are the only mutable thing about published knowledge and they change in one transaction,
serialised per namespace (``_lock_aliases``) and compare-and-set (``promote(expected_latest=…)``), so
two builds promoting one namespace at once leave it pointing at the one that promoted last, with the
other as @rollback.

The schema is migrated by Alembic (knowledge_plane/storage/schema.py): ``Registry(url, tenant_id)`` brings the
database to the newest revision the first time a process opens it. The query service only reads
the registry and appends to ``query_log``; with ``migrate=False`` it opens it without touching the
schema, so it can run with credentials that have no DDL rights once ``knowledge db upgrade`` has
run with the build plane's. A table it needs that is missing is then a ``MissingRegistryTable``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from knowledge_plane.storage.schema import ensure_sqlite_dir, metadata, upgrade

LATEST, ROLLBACK = "latest", "rollback"
# alias_events actions: "promote" is a build's promotion; the others are an operator's decisions,
# which a rebuild of the same content never undoes.
BUILD_PROMOTE, OPERATOR_PROMOTE, OPERATOR_ROLLBACK = "promote", "manual-promote", "rollback"
OPERATOR_ACTIONS = (OPERATOR_PROMOTE, OPERATOR_ROLLBACK)
_ANY = object()  # promote(expected_latest=_ANY): no compare-and-set


class AliasMoved(RuntimeError):
    """@latest is no longer what the caller decided from: another process moved it in between."""

    def __init__(self, namespace: str, expected: str | None, found: str | None):
        super().__init__(f"{namespace}@latest moved from {expected} to {found} meanwhile")
        self.found = found

index_versions = sa.Table(
    "index_versions",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("namespace", sa.String(128), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("documents", sa.Integer, nullable=False),
    sa.Column("checks_passed", sa.Boolean, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("manifest", sa.Text, nullable=False),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("namespace", sa.String(128), primary_key=True),
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("namespace", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("latest_before", sa.String(64)),
    sa.Column("latest_after", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class VersionRecord:
    namespace: str
    version: str
    created_at: dt.datetime
    path: str
    fingerprint: str
    chunks: int
    documents: int
    checks_passed: bool
    manifest: dict[str, Any]
    deleted: bool = False


class Registry:
    def __init__(self, url: str, tenant_id: str, migrate: bool = True):
        """``migrate=False``: leave the schema alone (a role without DDL rights, see the module docstring)."""
        ensure_sqlite_dir(url)
        self.url = url
        self.tenant_id = tenant_id
        self.engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            upgrade(self.engine)

    # -- versions ---------------------------------------------------------------------------
    def add_version(self, namespace: str, version: str, path: Path, manifest: dict[str, Any]) -> None:
        """Register a written version; registering the same version with the same content again (two
        runs that built it at once) is a no-op, with other content an IntegrityError."""
        try:
            self._insert_version(namespace, version, path, manifest)
        except sa.exc.IntegrityError:
            existing = self.version(namespace, version)
            if existing is None or existing.fingerprint != manifest["fingerprint"]:
                raise

    def _insert_version(self, namespace: str, version: str, path: Path, manifest: dict[str, Any]) -> None:
        with self.engine.begin() as db:
            db.execute(
                index_versions.insert().values(
                    tenant_id=self.tenant_id,
                    namespace=namespace,
                    version=version,
                    created_at=_now(),
                    path=str(path),
                    fingerprint=manifest["fingerprint"],
                    chunks=manifest["counts"]["chunks"],
                    documents=manifest["counts"]["documents"],
                    checks_passed=manifest["checks_passed"],
                    deleted=False,
                    manifest=json.dumps(manifest, ensure_ascii=False),
                )
            )

    def versions(self, namespace: str, include_deleted: bool = False) -> list[VersionRecord]:
        """Newest first."""
        query = sa.select(index_versions).where(
            index_versions.c.tenant_id == self.tenant_id, index_versions.c.namespace == namespace
        )
        if not include_deleted:
            query = query.where(index_versions.c.deleted.is_(False))
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(index_versions.c.created_at.desc(), index_versions.c.version.desc()))
            return [_record(r) for r in rows]

    def version(self, namespace: str, version: str) -> VersionRecord | None:
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(index_versions).where(
                    index_versions.c.tenant_id == self.tenant_id,
                    index_versions.c.namespace == namespace,
                    index_versions.c.version == version,
                )
            ).first()
        return _record(row) if row else None

    def mark_deleted(self, namespace: str, version: str) -> None:
        with self.engine.begin() as db:
            db.execute(
                index_versions.update()
                .where(
                    index_versions.c.tenant_id == self.tenant_id,
                    index_versions.c.namespace == namespace,
                    index_versions.c.version == version,
                )
                .values(deleted=True)
            )

    # -- aliases ----------------------------------------------------------------------------
    def aliases(self, namespace: str | None = None) -> dict[str, dict[str, str]]:
        """{namespace: {alias: version}} for this tenant."""
        query = sa.select(aliases).where(aliases.c.tenant_id == self.tenant_id)
        if namespace:
            query = query.where(aliases.c.namespace == namespace)
        out: dict[str, dict[str, str]] = {}
        with self.engine.connect() as db:
            for row in db.execute(query):
                out.setdefault(row.namespace, {})[row.alias] = row.version
        return out

    def _set_aliases(
        self, db: sa.Connection, namespace: str, latest: str, rollback: str | None, action: str, before: str | None
    ) -> None:
        db.execute(aliases.delete().where(aliases.c.tenant_id == self.tenant_id, aliases.c.namespace == namespace))
        rows = [{"alias": LATEST, "version": latest}] + ([{"alias": ROLLBACK, "version": rollback}] if rollback else [])
        db.execute(
            aliases.insert(),
            [{"tenant_id": self.tenant_id, "namespace": namespace, "updated_at": _now(), **r} for r in rows],
        )
        db.execute(
            alias_events.insert().values(
                tenant_id=self.tenant_id,
                namespace=namespace,
                action=action,
                latest_before=before,
                latest_after=latest,
                at=_now(),
            )
        )

    def promote(
        self, namespace: str, version: str, action: str = BUILD_PROMOTE, expected_latest: Any = _ANY
    ) -> str | None:
        """@latest := version and @rollback := the previous @latest, in one transaction.

        Refuses a version that is unknown, deleted, or whose checks did not pass (in its row or in
        the manifest it was registered with). With ``expected_latest``, only if @latest still is that
        (None: no @latest yet), else ``AliasMoved``. Returns the previous @latest.
        """
        self._require_promotable(namespace, version)
        with self.engine.begin() as db:
            self._lock_aliases(db, namespace)
            current = self._current(db, namespace)
            before = current.get(LATEST)
            if expected_latest is not _ANY and before != expected_latest:
                raise AliasMoved(namespace, expected_latest, before)
            if before == version:
                return before
            self._set_aliases(db, namespace, version, before or current.get(ROLLBACK), action, before)
        return before

    def _require_promotable(self, namespace: str, version: str) -> VersionRecord:
        record = self.version(namespace, version)
        if record is None:
            raise LookupError(f"{namespace}@{version} is not a registered index version")
        if record.deleted:
            raise LookupError(f"{namespace}@{version} was deleted (only the newest kept versions remain)")
        failed = [c["name"] for c in record.manifest.get("checks", []) if not c.get("passed")]
        if failed or not record.checks_passed or not record.manifest.get("checks_passed", False):
            raise PermissionError(
                f"{namespace}@{version} failed its quality checks ({', '.join(failed) or 'checks not recorded'}) "
                "and cannot be promoted"
            )
        return record

    def moved_off_by(self, namespace: str, version: str) -> str | None:
        """The action of the last alias move that took @latest away from ``version`` (None if it never
        was @latest, or still is)."""
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(alias_events.c.action, alias_events.c.latest_after)
                .where(
                    alias_events.c.tenant_id == self.tenant_id,
                    alias_events.c.namespace == namespace,
                    sa.or_(alias_events.c.latest_before == version, alias_events.c.latest_after == version),
                )
                .order_by(alias_events.c.id.desc())
                .limit(1)
            ).first()
        return row.action if row is not None and row.latest_after != version else None

    def rollback(self, namespace: str) -> tuple[str, str]:
        """@latest := @rollback; @rollback := the next older kept version that passed its checks.

        Returns (from_version, to_version). Raises LookupError when there is nothing to go back to.
        """
        with self.engine.begin() as db:
            self._lock_aliases(db, namespace)
            current = self._current(db, namespace)
            if LATEST not in current:
                raise LookupError(f"{namespace} has no @latest version")
            target = current.get(ROLLBACK)
            if not target:
                raise LookupError(f"{namespace} has no @rollback version to go back to")
            self._require_promotable(namespace, target)
            # Older by creation time, as versions() orders them: two versions made in one second have ids
            # that sort by their fingerprint, not by age.
            kept = [v.version for v in self.versions(namespace) if v.checks_passed]  # newest first
            older = [v for v in kept[kept.index(target) + 1:] if v != current[LATEST]] if target in kept else []
            self._set_aliases(db, namespace, target, older[0] if older else None, OPERATOR_ROLLBACK, current[LATEST])
        return current[LATEST], target

    def _lock_aliases(self, db: sa.Connection, namespace: str) -> None:
        """Hold the namespace's aliases for the rest of the transaction, before reading them: a
        concurrent move waits instead of deciding from what this one is about to change.

        Postgres: a transaction-scoped advisory lock per (tenant, namespace). SQLite: a write first,
        so the transaction takes the database's write lock (waiting up to busy_timeout) before its
        first read; a read first would pin a snapshot that a later write could not commit over."""
        if db.dialect.name == "postgresql":
            digest = hashlib.sha256(f"{self.tenant_id}\0{namespace}".encode()).digest()
            key = int.from_bytes(digest[:8], "big", signed=True)
            db.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        else:
            db.execute(aliases.update().where(sa.false()).values(version=aliases.c.version))

    def _current(self, db: sa.Connection, namespace: str) -> dict[str, str]:
        rows = db.execute(
            sa.select(aliases.c.alias, aliases.c.version).where(
                aliases.c.tenant_id == self.tenant_id, aliases.c.namespace == namespace
            )
        )
        return {r.alias: r.version for r in rows}

    def namespaces(self) -> list[str]:
        with self.engine.connect() as db:
            rows = db.execute(
                sa.select(index_versions.c.namespace).where(index_versions.c.tenant_id == self.tenant_id).distinct()
            )
            return sorted(r.namespace for r in rows)

    def status(self, namespaces: list[str]) -> list[dict[str, Any]]:
        """@latest, @rollback and the kept versions (newest first) of ``namespaces`` and of every
        namespace the registry holds, one row each (``knowledge status``, /status pages)."""
        all_aliases = self.aliases()
        return [
            {
                "namespace": namespace,
                "latest": all_aliases.get(namespace, {}).get(LATEST),
                "rollback": all_aliases.get(namespace, {}).get(ROLLBACK),
                "versions": [
                    {
                        "version": v.version,
                        "chunks": v.chunks,
                        "documents": v.documents,
                        "checks_passed": v.checks_passed,
                        "evaluation": (v.manifest.get("evaluation") or {}).get("figures"),
                        "created_at": v.created_at.isoformat(),
                    }
                    for v in self.versions(namespace)
                ],
            }
            for namespace in sorted(set(namespaces) | set(self.namespaces()))
        ]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # The query log's DELETE trigger asks this: 0 everywhere but on the retention job's connection
    # (migration 0004, knowledge_plane/storage/retention.py).
    dbapi_connection.create_function("knowledge_retention", 0, lambda: 0)


def _record(row: Any) -> VersionRecord:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    return VersionRecord(
        row.namespace,
        row.version,
        created,
        row.path,
        row.fingerprint,
        row.chunks,
        row.documents,
        bool(row.checks_passed),
        json.loads(row.manifest),
        bool(row.deleted),
    )


# -- query service: caller apps and the query log ----------------------------------------------
# Added for the read side. The caller-app registry follows Aurora Nexus: a name, an active flag,
# seeded by the initial migration with the two apps every deployment has (aurora_nexus_ui,
# unknown). The query log is append-only: the service only ever inserts, and triggers created by
# the migration refuse UPDATE and DELETE.

caller_apps = sa.Table(
    "caller_apps", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

query_log = sa.Table(
    "query_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("caller_app", sa.String(64), nullable=False),
    sa.Column("source_app", sa.String(128)),
    sa.Column("question_sha256", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("passage_ids", sa.Text, nullable=False),  # JSON list of chunk ids
    sa.Column("index_versions", sa.Text, nullable=False),  # JSON {namespace: version}
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("flags", sa.Text, nullable=False),  # JSON list: prompt_injection, namespace_injection, personal_data…
    sa.Column("thread_id", sa.String(128)),  # the caller's conversation (migration 0004)
    sa.Column("end_user_hash", sa.String(64)),  # keyed hash of the end user (migration 0006, retention.py)
)
sa.Index("ix_query_log_at", query_log.c.tenant_id, query_log.c.at)
sa.Index("ix_query_log_end_user", query_log.c.tenant_id, query_log.c.end_user_hash)


class MissingRegistryTable(RuntimeError):
    """A table the query service needs is not in the registry database."""

    def __init__(self, table: str, url: str):
        super().__init__(f"the registry table '{table}' is missing from the registry database "
                         f"({sa.make_url(url).render_as_string(hide_password=True)}); "
                         "`knowledge db upgrade`, run with the build plane's credentials, creates the schema")
        self.table = table


@dataclass(frozen=True)
class CallerApp:
    name: str
    active: bool
    created_at: dt.datetime


def _guard_missing(registry: Registry, table: sa.Table, exc: sa.exc.DBAPIError) -> None:
    if not sa.inspect(registry.engine).has_table(table.name):
        raise MissingRegistryTable(table.name, registry.url) from exc


def _caller_app(row: Any) -> CallerApp:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    return CallerApp(row.name, bool(row.active), created)


def get_caller_app(registry: Registry, name: str) -> CallerApp | None:
    """The registered caller app ``name``; MissingRegistryTable when the table does not exist."""
    try:
        with registry.engine.connect() as db:
            row = db.execute(sa.select(caller_apps).where(caller_apps.c.name == name)).first()
    except sa.exc.DBAPIError as exc:
        _guard_missing(registry, caller_apps, exc)
        raise
    return _caller_app(row) if row else None


def active_caller_apps(registry: Registry) -> list[CallerApp]:
    try:
        with registry.engine.connect() as db:
            rows = db.execute(sa.select(caller_apps).where(caller_apps.c.active.is_(True)).order_by(caller_apps.c.name))
            return [_caller_app(r) for r in rows]
    except sa.exc.DBAPIError as exc:
        _guard_missing(registry, caller_apps, exc)
        raise


def set_caller_app(registry: Registry, name: str, active: bool = True) -> None:
    """Register a caller app or change its active flag (an administration task, not a service route)."""
    with registry.engine.begin() as db:
        updated = db.execute(caller_apps.update().where(caller_apps.c.name == name).values(active=active)).rowcount
        if not updated:
            db.execute(caller_apps.insert().values(name=name, active=active, created_at=_now()))


def append_query_log(registry: Registry, entries: list[dict[str, Any]]) -> None:
    """Insert query-log rows; JSON-valued fields may be given as Python lists and dicts."""
    if not entries:
        return
    rows = []
    for entry in entries:
        row = {"tenant_id": registry.tenant_id, "at": _now(), **entry}
        for name in ("passage_ids", "index_versions", "flags"):
            if not isinstance(row.get(name), str):
                row[name] = json.dumps(row.get(name) or ([] if name != "index_versions" else {}), ensure_ascii=False)
        rows.append(row)
    try:
        with registry.engine.begin() as db:
            db.execute(query_log.insert(), rows)
    except sa.exc.DBAPIError as exc:
        _guard_missing(registry, query_log, exc)
        raise


def query_log_entries(registry: Registry, limit: int = 100) -> list[dict[str, Any]]:
    """The newest entries of this tenant's query log, newest first, JSON fields decoded."""
    with registry.engine.connect() as db:
        rows = db.execute(sa.select(query_log).where(query_log.c.tenant_id == registry.tenant_id)
                          .order_by(query_log.c.id.desc()).limit(limit))
        out = []
        for row in rows:
            entry = dict(row._mapping)
            for name in ("passage_ids", "index_versions", "flags"):
                entry[name] = json.loads(entry[name])
            out.append(entry)
        return out
