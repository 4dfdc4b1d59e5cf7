"""``knowledge db upgrade | current``: the registry database's schema, migrated by Alembic
(knowledge_plane/storage/schema.py)."""

from __future__ import annotations

import argparse

import sqlalchemy as sa

from knowledge_plane.cli.output import emit, fail
from knowledge_plane.settings import Settings
from knowledge_plane.storage import schema


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="The registry database's schema migrations.")
    db = db.add_subparsers(dest="db", required=True)
    p = db.add_parser("upgrade", help="Migrate the registry database to the newest revision (needs DDL rights).")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_upgrade)
    p = db.add_parser("current", help="Print the registry database's revision; exit 1 if it is not the newest.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_current)


def _url(settings: Settings) -> str:
    return sa.make_url(settings.registry.url.get_secret_value()).render_as_string(hide_password=True)


def cmd_upgrade(args: argparse.Namespace) -> int:
    settings = args.settings
    try:
        before = schema.current(settings.registry.url.get_secret_value())
        after = schema.upgrade(settings.registry.url.get_secret_value())
    except sa.exc.SQLAlchemyError as exc:
        return fail(f"could not migrate {_url(settings)}: {exc}", args.json)
    data = {"database": _url(settings), "from": before, "to": after}
    emit(args.json, data, lambda d: f"{d['database']}: {d['from'] or 'not migrated'} → {d['to']}")
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    settings = args.settings
    try:
        revision = schema.current(settings.registry.url.get_secret_value())
    except sa.exc.SQLAlchemyError as exc:
        return fail(f"could not read the revision of {_url(settings)}: {exc}", args.json)
    data = {"database": _url(settings), "current": revision, "head": schema.head()}
    emit(args.json, data, lambda d: f"{d['database']}: {d['current'] or 'not migrated'} (newest: {d['head']})")
    return 0 if revision == data["head"] else 1
