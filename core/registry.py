"""The registry: index versions, the aliases that point at them, documents, caller apps, query log.

SQLite by default and Postgres in production, through the same SQLAlchemy Core statements. The
aliases are the only mutable thing about published knowledge and they change in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

LATEST, ROLLBACK = "latest", "rollback"

metadata = sa.MetaData()

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


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


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


class Registry:
    def __init__(self, url: str, tenant_id: str):
        _ensure_sqlite_dir(url)
        self.url = url
        self.tenant_id = tenant_id
        self.engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    # -- versions ---------------------------------------------------------------------------
    def add_version(self, namespace: str, version: str, path: Path, manifest: dict[str, Any]) -> None:
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

    def promote(self, namespace: str, version: str) -> str | None:
        """@latest := version and @rollback := the previous @latest, in one transaction.

        Refuses a version whose checks did not pass. Returns the previous @latest.
        """
        record = self.version(namespace, version)
        if record is None:
            raise LookupError(f"{namespace}@{version} is not a registered index version")
        if not record.checks_passed:
            raise PermissionError(f"{namespace}@{version} failed its quality checks and cannot be promoted")
        with self.engine.begin() as db:
            current = self._current(db, namespace)
            before = current.get(LATEST)
            if before == version:
                return before
            self._set_aliases(db, namespace, version, before or current.get(ROLLBACK), "promote", before)
        return before

    def rollback(self, namespace: str) -> tuple[str, str]:
        """@latest := @rollback; @rollback := the next older kept version that passed its checks.

        Returns (from_version, to_version). Raises LookupError when there is nothing to go back to.
        """
        with self.engine.begin() as db:
            current = self._current(db, namespace)
            if LATEST not in current:
                raise LookupError(f"{namespace} has no @latest version")
            target = current.get(ROLLBACK)
            if not target:
                raise LookupError(f"{namespace} has no @rollback version to go back to")
            kept = [v for v in self.versions(namespace) if v.checks_passed]
            older = [v.version for v in kept if v.version < target and v.version != current[LATEST]]
            self._set_aliases(db, namespace, target, older[0] if older else None, "rollback", current[LATEST])
        return current[LATEST], target

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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


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
    )
