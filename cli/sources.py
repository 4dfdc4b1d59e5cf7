"""``knowledge packs …`` and ``knowledge upload``: the tenant's packs and putting documents in the bucket."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.output import emit, fail, table
from core.build import BuildContext
from core.object_store import open_object_store
from core.settings import Settings
from core.uploads import UPLOADS_PREFIX, parse_key


def register(sub: argparse._SubParsersAction) -> None:
    packs = sub.add_parser("packs", help="The tenant's document packs.").add_subparsers(dest="packs", required=True)
    p = packs.add_parser("list", help="List packs and whether they are active.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_packs_list)
    p = packs.add_parser("create", help="Register a pack.")
    p.add_argument("pack_id")
    p.add_argument("--name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_packs_create)
    for name, active in (("disable", False), ("enable", True)):
        p = packs.add_parser(name, help=f"{name.capitalize()} a pack (a disabled pack's uploads are not indexed).")
        p.add_argument("pack_id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_packs_set, active=active)

    p = sub.add_parser("upload", help="Put a document into uploads/{tenant}/{pack}/ of the bucket.")
    p.add_argument("file", type=Path)
    p.add_argument("--pack-id", required=True)
    p.add_argument("--name", help="Object name under the pack (default: the file name).")
    p.add_argument("--source-app")
    p.add_argument("--caller-app")
    p.add_argument("--title")
    p.add_argument("--namespace", help="Target knowledge:* namespace (default knowledge:uploads).")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_upload)


def cmd_packs_list(args: argparse.Namespace) -> int:
    data = BuildContext(Settings.from_env()).packs.list()
    emit(
        args.json,
        data,
        lambda d: table([[p["pack_id"], p["name"], p["active"]] for p in d], ["pack", "name", "active"]),
    )
    return 0


def cmd_packs_create(args: argparse.Namespace) -> int:
    try:
        BuildContext(Settings.from_env()).packs.create(args.pack_id, args.name)
    except ValueError as exc:
        return fail(str(exc), args.json)
    emit(args.json, {"pack_id": args.pack_id, "active": True}, lambda d: f"created pack {d['pack_id']}")
    return 0


def cmd_packs_set(args: argparse.Namespace) -> int:
    try:
        BuildContext(Settings.from_env()).packs.set_active(args.pack_id, args.active)
    except LookupError as exc:
        return fail(str(exc), args.json)
    state = "enabled" if args.active else "disabled"
    emit(args.json, {"pack_id": args.pack_id, "active": args.active}, lambda d: f"{state} pack {d['pack_id']}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    key = f"{UPLOADS_PREFIX}/{settings.tenant_id}/{args.pack_id}/{args.name or args.file.name}"
    try:
        parse_key(key, settings.tenant_id)
        data = args.file.read_bytes()
    except (ValueError, OSError) as exc:
        return fail(str(exc), args.json)
    metadata = {
        k: v
        for k, v in (
            ("source_app", args.source_app),
            ("caller_app", args.caller_app),
            ("title", args.title),
            ("namespace", args.namespace),
        )
        if v
    }
    info = open_object_store(settings).put(key, data, metadata)
    result = {"key": key, "etag": info.etag, "size": info.size, "metadata": metadata}
    emit(args.json, result, lambda d: f"uploaded {d['key']} ({d['size']} bytes) {json.dumps(d['metadata'])}")
    return 0
