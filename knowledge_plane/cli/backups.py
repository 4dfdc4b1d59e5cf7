"""``knowledge backup`` and ``knowledge restore``: one tenant's registry and index versions to and from
the object store (knowledge_plane/storage/backup.py)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import click

from knowledge_plane.cli.commands import command, json_flag
from knowledge_plane.cli.output import emit, fail


def register(root: click.Group) -> None:
    root.add_command(command(
        "backup", cmd_backup,
        "Write a checksummed backup of the registry and the kept index versions to the object store.",
        click.Option(["--list", "list_only"], is_flag=True, help="List the tenant's complete backups instead."),
        json_flag(),
    ))
    root.add_command(command(
        "restore", cmd_restore,
        "Restore a backup into a fresh registry and data dir (every object is checked first).",
        click.Argument(["backup_id"], default="latest", required=False),
        json_flag(),
    ))


def _open(settings):  # heavy imports (SQLAlchemy, the vector clients) only when a command runs
    from knowledge_plane.storage.object_store import open_object_store
    from knowledge_plane.storage.registry import Registry

    return Registry(settings.registry.url.get_secret_value(), settings.tenant_id), open_object_store(settings)


def _render(verb: str):
    def render(d: dict) -> str:
        lines = [f"{verb} {d['backup_id']} ({d['prefix']}): {d['objects']} objects, {d['bytes']} bytes",
                 "  rows: " + ", ".join(f"{t} {n}" for t, n in d["tables"].items()),
                 "  versions: " + (", ".join(d["versions"]) or "none")]
        if d.get("published"):
            lines.append("  published to the vector store: " + ", ".join(d["published"]))
        return "\n".join(lines)

    return render


def cmd_backup(args: SimpleNamespace) -> int:
    from knowledge_plane.storage import backup

    registry, store = _open(args.settings)
    if args.list_only:
        ids = backup.list_backups(store, args.settings.tenant_id)
        emit(args.json, {"backups": ids}, lambda d: "\n".join(d["backups"]) or "no backup")
        return 0
    try:
        report = backup.backup(registry, store)
    except backup.BackupError as exc:
        return fail(str(exc), args.json)
    emit(args.json, dataclasses.asdict(report), _render("backup"))
    return 0


def cmd_restore(args: SimpleNamespace) -> int:
    from knowledge_plane.storage import backup

    settings = args.settings
    registry, store = _open(settings)
    backup_id = args.backup_id
    if backup_id == "latest":
        ids = backup.list_backups(store, settings.tenant_id)
        if not ids:
            where = store.uri(backup.backup_prefix(settings.tenant_id))
            return fail(f"no backup of tenant {settings.tenant_id} in {where}", args.json)
        backup_id = ids[-1]
    try:
        report = backup.restore(registry, store, settings.paths.indexes_dir, backup_id, settings)
    except backup.BackupError as exc:
        return fail(str(exc), args.json)
    emit(args.json, dataclasses.asdict(report), _render("restored"))
    return 0
