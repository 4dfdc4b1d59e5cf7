"""``knowledge packs …`` and ``knowledge upload``: the tenant's packs, their grants, and putting documents
in the bucket (refused up front, with the build's own check, when the build would refuse them).

The packs are the registry's ``Packs``; the build plane (its upload rules and parsers) is imported
by ``upload`` alone, when it runs."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import TYPE_CHECKING

import click

from knowledge_plane.cli.commands import command, group, json_flag
from knowledge_plane.cli.output import emit, fail, table
from knowledge_plane.domain.documents import TRUTH_LEVELS
from knowledge_plane.settings import Settings

if TYPE_CHECKING:
    from knowledge_plane.storage.packs import Packs

EMPTY_HINT = ("no packs yet: create one with `knowledge packs create PACK --name NAME`, then let it publish "
              "with `knowledge packs allow PACK --namespace NS` (an upload also registers its pack)")


def register(root: click.Group) -> None:
    pack_id = click.Argument(["pack_id"])
    namespace = click.Option(["--namespace"], metavar="NS", required=True)
    root.add_command(group(
        "packs", "The tenant's document packs.",
        command("list", cmd_packs_list, "List packs and whether they are active.", json_flag()),
        command("create", cmd_packs_create, "Register a pack.", pack_id, click.Option(["--name"]), json_flag()),
        *(command(name, cmd_packs_set, f"{name.capitalize()} a pack (a disabled pack's uploads are not indexed).",
                  pack_id, json_flag(), active=active)
          for name, active in (("disable", False), ("enable", True))),
        command("allow", cmd_packs_allow,
                "Let a pack's uploads publish into a namespace, up to a truth level (default L4).",
                pack_id, namespace,
                click.Option(["--max-truth-level"], type=click.Choice(TRUTH_LEVELS), default="L4", show_default=True),
                json_flag()),
        command("revoke", cmd_packs_revoke, "Withdraw a pack's grant on a namespace.", pack_id, namespace, json_flag()),
    ))
    root.add_command(command(
        "upload", cmd_upload, "Put a document into uploads/{tenant}/{pack}/ of the bucket.",
        click.Argument(["file"], type=click.Path(path_type=Path)),
        click.Option(["--pack-id"], metavar="PACK", required=True),
        click.Option(["--name"], help="Object name under the pack (default: the file name)."),
        click.Option(["--source-app"]),
        click.Option(["--caller-app"]),
        click.Option(["--title"]),
        click.Option(["--namespace"], metavar="NS", help="Target knowledge:* namespace (default knowledge:uploads)."),
        click.Option(["--truth-level"], type=click.Choice(TRUTH_LEVELS),
                     help="Within the pack's grant (default: the grant's)."),
        json_flag(),
    ))


def _packs(settings: Settings) -> Packs:
    from knowledge_plane.storage.packs import Packs
    from knowledge_plane.storage.registry import Registry

    return Packs(Registry(settings.registry.url.get_secret_value(), settings.tenant_id).engine, settings.tenant_id)


def cmd_packs_list(args: SimpleNamespace) -> int:
    packs = _packs(args.settings)
    data = [{**p, "may_publish": packs.allowed(p["pack_id"])} for p in packs.list()]
    emit(
        args.json,
        data,
        lambda d: table(
            [[p["pack_id"], p["name"], p["active"], _grants(p["may_publish"])] for p in d],
            ["pack", "name", "active", "may publish (namespace ≤ strongest truth level)"],
        ) if d else EMPTY_HINT,
    )
    return 0


def _grants(allowed: dict[str, str]) -> str:
    return ", ".join(f"{ns} ≤ {level}" for ns, level in sorted(allowed.items()))


def cmd_packs_allow(args: SimpleNamespace) -> int:
    packs = _packs(args.settings)
    try:
        packs.allow(args.pack_id, args.namespace, args.max_truth_level)
    except (ValueError, LookupError) as exc:
        return fail(str(exc), args.json)
    data = {"pack_id": args.pack_id, "may_publish": packs.allowed(args.pack_id)}
    emit(args.json, data, lambda d: f"pack {d['pack_id']} may publish into {_grants(d['may_publish'])}")
    return 0


def cmd_packs_revoke(args: SimpleNamespace) -> int:
    packs = _packs(args.settings)
    try:
        packs.revoke(args.pack_id, args.namespace)
    except LookupError as exc:
        return fail(str(exc), args.json)
    data = {"pack_id": args.pack_id, "may_publish": packs.allowed(args.pack_id)}
    emit(args.json, data, lambda d: f"pack {d['pack_id']} may publish into {_grants(d['may_publish'])}")
    return 0


def cmd_packs_create(args: SimpleNamespace) -> int:
    try:
        _packs(args.settings).create(args.pack_id, args.name)
    except ValueError as exc:
        return fail(str(exc), args.json)
    emit(args.json, {"pack_id": args.pack_id, "active": True}, lambda d: f"created pack {d['pack_id']}")
    return 0


def cmd_packs_set(args: SimpleNamespace) -> int:
    try:
        _packs(args.settings).set_active(args.pack_id, args.active)
    except LookupError as exc:
        return fail(str(exc), args.json)
    state = "enabled" if args.active else "disabled"
    emit(args.json, {"pack_id": args.pack_id, "active": args.active}, lambda d: f"{state} pack {d['pack_id']}")
    return 0


def cmd_upload(args: SimpleNamespace) -> int:
    """Put a document in the bucket, after the check the build applies to it
    (knowledge_plane.build.uploads.check_upload)."""
    from knowledge_plane.build.frontmatter import split_front_matter
    from knowledge_plane.build.parsing import decode_text
    from knowledge_plane.build.stages import BuildContext
    from knowledge_plane.build.uploads import UPLOADS_PREFIX, check_upload, upload_truth_level
    from knowledge_plane.domain.quarantine import QuarantineError
    from knowledge_plane.storage.object_store import open_object_store

    settings = args.settings
    key = f"{UPLOADS_PREFIX}/{settings.tenant_id}/{args.pack_id}/{args.name or args.file.name}"
    metadata = {
        k: v
        for k, v in (
            ("source_app", args.source_app),
            ("caller_app", args.caller_app),
            ("title", args.title),
            ("namespace", args.namespace),
            ("truth_level", args.truth_level),
        )
        if v
    }
    try:
        data = args.file.read_bytes()
        _, meta = check_upload(key, len(data), metadata, BuildContext(settings).upload_rules)
        if PurePosixPath(key).suffix.lower() in (".md", ".markdown"):
            # The front matter is metadata too: its truth level is held to the same grant.
            upload_truth_level(meta, split_front_matter(decode_text(data, key))[0])
    except OSError as exc:
        return fail(str(exc), args.json)
    except QuarantineError as exc:
        return fail(f"refused ({exc.reason}): {exc.detail}", args.json)
    info = open_object_store(settings).put(key, data, metadata)
    result = {"key": key, "etag": info.etag, "size": info.size, "metadata": metadata}
    emit(args.json, result, lambda d: f"uploaded {d['key']} ({d['size']} bytes) {json.dumps(d['metadata'])}")
    return 0
