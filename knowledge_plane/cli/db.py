"""``knowledge db upgrade | current``: the registry database's schema, migrated by Alembic
(knowledge_plane/storage/schema.py)."""

from __future__ import annotations

from types import SimpleNamespace

import click

from knowledge_plane.cli.commands import command, group, json_flag
from knowledge_plane.cli.output import emit, fail
from knowledge_plane.settings import Settings


def register(root: click.Group) -> None:
    root.add_command(group(
        "db", "The registry database's schema migrations.",
        command("upgrade", cmd_upgrade, "Migrate the registry database to the newest revision (needs DDL rights).",
                json_flag()),
        command("current", cmd_current, "Print the registry database's revision; exit 1 if it is not the newest.",
                json_flag()),
    ))


def _url(settings: Settings) -> str:
    import sqlalchemy as sa

    return sa.make_url(settings.registry.url.get_secret_value()).render_as_string(hide_password=True)


def cmd_upgrade(args: SimpleNamespace) -> int:
    import sqlalchemy as sa

    from knowledge_plane.storage import schema  # Alembic: imported by the handlers only

    settings = args.settings
    try:
        before = schema.current(settings.registry.url.get_secret_value())
        after = schema.upgrade(settings.registry.url.get_secret_value())
    except sa.exc.SQLAlchemyError as exc:
        return fail(f"could not migrate {_url(settings)}: {exc}", args.json)
    data = {"database": _url(settings), "from": before, "to": after}
    emit(args.json, data, lambda d: f"{d['database']}: {d['from'] or 'not migrated'} → {d['to']}")
    return 0


def cmd_current(args: SimpleNamespace) -> int:
    import sqlalchemy as sa

    from knowledge_plane.storage import schema

    settings = args.settings
    try:
        revision = schema.current(settings.registry.url.get_secret_value())
    except sa.exc.SQLAlchemyError as exc:
        return fail(f"could not read the revision of {_url(settings)}: {exc}", args.json)
    data = {"database": _url(settings), "current": revision, "head": schema.head()}
    emit(args.json, data, lambda d: f"{d['database']}: {d['current'] or 'not migrated'} (newest: {d['head']})")
    return 0 if revision == data["head"] else 1
