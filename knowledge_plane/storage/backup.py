"""Backups of one tenant's published knowledge, and their restore on a fresh machine state.

A backup is a set of objects under ``backups/{tenant}/{backup id}/`` in the object store (the
local directory or MinIO/S3): ``registry/<table>.jsonl`` (every registry table but the query log,
the tenant's rows only where the table has a tenant), ``indexes/<namespace slug>/<version>/<file>``
(the files of every kept index version, so each alias and its rollback come back) and, written
last, ``manifest.json``: the schema revision and, for every other object, its size and SHA-256. A
backup without its manifest is incomplete and is never restored.

The registry is read in one transaction (a repeatable-read snapshot on Postgres, SQLite's read
snapshot), so the tables agree with each other; version files are immutable, so the ones the
snapshot names do not change while they are copied.

``restore`` downloads and checks every object against the manifest before it writes anything: a
missing, truncated or altered object is a ``BackupCorrupted`` naming it. It then writes the version
files under the data dir, inserts the rows (each version's ``path`` pointing at its new place)
into a registry that holds no knowledge of the tenant yet, and, with a vector store configured,
publishes the aliased versions from their files and moves the store's aliases: the registry and
the version files are the whole record of a collection (its points and its version record), so no
store snapshot is needed. (qdrant-client's local mode has no snapshot API at all: its
``create_snapshot`` raises ``NotImplementedError``.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from knowledge_plane.domain.ids import namespace_slug
from knowledge_plane.storage import schema
from knowledge_plane.storage.index_store import read_facts, read_version, version_dir
from knowledge_plane.storage.object_store import ObjectMissing, ObjectStore
from knowledge_plane.storage.processes import tmp_path
from knowledge_plane.storage.registry import LATEST, Registry, index_versions, query_log
from knowledge_plane.storage.vector_backends import open_vector_backend

MANIFEST = "manifest.json"
FORMAT = 1
# The query log is not knowledge: it is governed by its retention, and a restore must not
# resurrect what retention or an erasure removed.
SKIPPED_TABLES = (query_log.name,)


class BackupError(RuntimeError):
    """A backup cannot be taken or restored (the message says why)."""


class BackupCorrupted(BackupError):
    """An object of the backup is missing or does not match its checksum in the manifest."""


@dataclass(frozen=True)
class BackupReport:
    backup_id: str
    prefix: str
    objects: int
    bytes: int
    tables: dict[str, int]
    versions: list[str]  # namespace@version
    published: list[str] = field(default_factory=list)  # restore: versions published into the vector store


def backup_prefix(tenant_id: str, backup_id: str = "") -> str:
    return f"backups/{tenant_id}/{backup_id + '/' if backup_id else ''}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tables() -> list[sa.Table]:
    """The registry's tables in dependency order (parents before children), the query log left out."""
    return [t for t in schema.target_metadata().sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _decode(column: sa.Column, value: Any) -> Any:
    """A JSON value back to the column's Python type (dates and times travel as ISO strings)."""
    if value is None:
        return None
    if isinstance(column.type, sa.DateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(column.type, sa.Date):
        return dt.date.fromisoformat(value)
    return value


def _snapshot(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows of this tenant, read in one transaction."""
    engine = registry.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as db, db.begin():
        for table in _tables():
            query = sa.select(table)
            if "tenant_id" in table.c:
                query = query.where(table.c.tenant_id == registry.tenant_id)
            order = list(table.primary_key.columns) or list(table.c)
            out[table.name] = [dict(row._mapping) for row in db.execute(query.order_by(*order))]
    return out


def backup(registry: Registry, store: ObjectStore, now: dt.datetime | None = None) -> BackupReport:
    """Write a backup of ``registry``'s tenant into ``store``; returns what it holds."""
    now = now or dt.datetime.now(dt.UTC)
    backup_id = f"{now:%Y%m%dT%H%M%SZ}"
    prefix = backup_prefix(registry.tenant_id, backup_id)
    if any(True for _ in store.list(prefix)):
        raise BackupError(f"a backup {backup_id} already exists under {store.uri(prefix)}")
    rows = _snapshot(registry)
    files: dict[str, dict[str, Any]] = {}

    def put(name: str, data: bytes) -> None:
        store.put(prefix + name, data)
        files[name] = {"size": len(data), "sha256": _sha256(data)}

    for table, table_rows in rows.items():
        body = "".join(json.dumps({k: _encode(v) for k, v in r.items()}, ensure_ascii=False, sort_keys=True) + "\n"
                       for r in table_rows)
        put(f"registry/{table}.jsonl", body.encode("utf-8"))
    versions = [r for r in rows[index_versions.name] if not r["deleted"]]
    for row in versions:
        source = Path(row["path"])
        if not source.is_dir():
            raise BackupError(f"{row['namespace']}@{row['version']}: its files are gone from {source}")
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            put(f"indexes/{namespace_slug(row['namespace'])}/{row['version']}/{path.relative_to(source).as_posix()}",
                path.read_bytes())
    manifest = {"format": FORMAT, "backup_id": backup_id, "tenant_id": registry.tenant_id,
                "created_at": now.isoformat(), "schema_revision": schema.current(registry.engine), "files": files}
    store.put(prefix + MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    return BackupReport(backup_id, prefix, len(files) + 1, sum(f["size"] for f in files.values()),
                        {t: len(r) for t, r in rows.items()}, [f"{r['namespace']}@{r['version']}" for r in versions])


def list_backups(store: ObjectStore, tenant_id: str) -> list[str]:
    """The complete backups of the tenant (those with a manifest), oldest first."""
    base = backup_prefix(tenant_id)
    return sorted(info.key[len(base):-len("/" + MANIFEST)] for info in store.list(base)
                  if info.key.endswith("/" + MANIFEST) and info.key[len(base):].count("/") == 1)


def _read_manifest(store: ObjectStore, prefix: str) -> dict[str, Any]:
    try:
        raw = store.get(prefix + MANIFEST)
    except ObjectMissing:
        raise BackupError(f"no backup at {store.uri(prefix)} (no {MANIFEST}: absent or incomplete)") from None
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        if manifest["format"] != FORMAT or not isinstance(files, dict):
            raise ValueError(f"format {manifest['format']!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupCorrupted(f"{store.uri(prefix + MANIFEST)} is not a backup manifest: {exc}") from None
    return manifest


def verify(store: ObjectStore, tenant_id: str, backup_id: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every object of a backup, each checked against the manifest; raises
    ``BackupCorrupted`` naming the first object that is missing or differs."""
    prefix = backup_prefix(tenant_id, backup_id)
    manifest = _read_manifest(store, prefix)
    if manifest.get("tenant_id") != tenant_id:
        raise BackupCorrupted(f"{store.uri(prefix + MANIFEST)} is a backup of tenant {manifest.get('tenant_id')!r}")
    blobs: dict[str, bytes] = {}
    for name, expected in sorted(manifest["files"].items()):
        try:
            data = store.get(prefix + name)
        except ObjectMissing:
            raise BackupCorrupted(f"backup {backup_id}: {name} is missing from {store.uri(prefix)}") from None
        if len(data) != expected["size"] or _sha256(data) != expected["sha256"]:
            raise BackupCorrupted(f"backup {backup_id}: {name} does not match its checksum "
                                  f"({len(data)} bytes, sha256 {_sha256(data)[:12]}…; the manifest says "
                                  f"{expected['size']} bytes, {expected['sha256'][:12]}…); nothing was restored")
        blobs[name] = data
    return manifest, blobs


def restore(registry: Registry, store: ObjectStore, indexes_dir: Path, backup_id: str,
            settings: Any = None) -> BackupReport:
    """Bring a fresh registry and data dir back to the backup's state; ``settings`` (the process's
    ``Settings``) names the vector store to publish the aliased versions into, if any.

    Refuses a registry that already holds index versions or aliases of the tenant, and a version
    folder that already exists: a restore never merges into live knowledge.
    """
    manifest, blobs = verify(store, registry.tenant_id, backup_id)
    if manifest["schema_revision"] != schema.head():
        raise BackupError(f"backup {backup_id} was taken at schema revision {manifest['schema_revision']}; "
                          f"this release is at {schema.head()}: restore it with the release that took it")
    tables = {t.name: t for t in _tables()}
    rows = {name: [json.loads(line) for line in blobs[f"registry/{name}.jsonl"].decode("utf-8").splitlines()]
            for name in tables if f"registry/{name}.jsonl" in blobs}
    with registry.engine.connect() as db:
        held = {name: n for name, table in tables.items() if "tenant_id" in table.c and (n := db.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.tenant_id == registry.tenant_id)
        ).scalar_one())}
    if held:
        raise BackupError(f"the registry already holds rows of tenant {registry.tenant_id} "
                          f"({', '.join(f'{n} in {name}' for name, n in sorted(held.items()))}); "
                          "restore into a fresh registry database (or one holding other tenants only)")
    versions = [r for r in rows.get(index_versions.name, []) if not r["deleted"]]
    tenant = registry.tenant_id
    targets = {(r["namespace"], r["version"]): version_dir(indexes_dir, tenant, r["namespace"], r["version"])
               for r in versions}
    for target in targets.values():
        if target.exists():
            raise BackupError(f"{target} already exists; restore into a fresh data dir")
    for row in rows.get(index_versions.name, []):
        row["path"] = str(version_dir(indexes_dir, registry.tenant_id, row["namespace"], row["version"]))
    for (namespace, version), target in targets.items():
        _write_files(target, f"indexes/{namespace_slug(namespace)}/{version}/", blobs)
    _insert(registry, tables, rows)
    published = publish_aliases(registry, settings) if settings is not None else []
    return BackupReport(backup_id, backup_prefix(registry.tenant_id, backup_id), len(blobs) + 1,
                        sum(len(b) for b in blobs.values()), {t: len(r) for t, r in rows.items()},
                        [f"{n}@{v}" for n, v in targets], published)


def _write_files(target: Path, prefix: str, blobs: dict[str, bytes]) -> None:
    """One version's files, written into a temporary folder renamed into place (as a build writes it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(target)
    shutil.rmtree(tmp, ignore_errors=True)
    for name, data in blobs.items():
        if name.startswith(prefix):
            path = tmp / name[len(prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    os.replace(tmp, target)


def _insert(registry: Registry, tables: dict[str, sa.Table], rows: dict[str, list[dict[str, Any]]]) -> None:
    """All rows in one transaction. The tenant's tables are empty (``restore`` checked): their rows
    are inserted, those keyed by a serial id (audit, alias events) under new ids, in their order, so
    another tenant's rows of the same id are never touched. A table shared by every tenant (the
    caller apps, which a migration seeds) takes the backup's row in place of one of the same key."""
    with registry.engine.begin() as db:
        for name, table in tables.items():
            table_rows = rows.get(name)
            if not table_rows:
                continue
            serial = {c.name for c in table.primary_key.columns if c.autoincrement is True}
            if "tenant_id" not in table.c:
                keys = list(table.primary_key.columns)
                for row in table_rows:
                    db.execute(table.delete().where(*(k == _decode(k, row[k.name]) for k in keys)))
            db.execute(table.insert(), [{c.name: _decode(c, r.get(c.name)) for c in table.c if c.name not in serial}
                                        for r in table_rows])


def publish_aliases(registry: Registry, settings: Any) -> list[str]:
    """Publish each namespace's aliased versions into the configured vector store from their files
    (unless already there) and point the store's alias at the registry's @latest: what a restore
    does, and what brings a new, empty vector store up to the registry. [] without a vector store."""
    backend = open_vector_backend(settings, read_only=False)
    if backend is None:
        return []
    published = []
    with backend:
        for namespace, named in sorted(registry.aliases().items()):
            for version in sorted(set(named.values())):
                if backend.read_version_info(namespace, version) is None:
                    path = Path(registry.version(namespace, version).path)
                    stored = read_version(path)
                    backend.publish(namespace, version, stored.vectors, stored.payloads, read_facts(path),
                                    stored.relevance)
                published.append(f"{namespace}@{version}")
            backend.switch_alias(namespace, named[LATEST])
    return published

