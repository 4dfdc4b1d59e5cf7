"""``knowledge packs …`` and ``knowledge upload``: the tenant's packs, their grants, and putting documents
in the bucket (refused up front, with the build's own check, when the build would refuse them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path, PurePosixPath

from knowledge_plane.build.frontmatter import split_front_matter
from knowledge_plane.build.parsing import decode_text
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.build.uploads import UPLOADS_PREFIX, check_upload, upload_truth_level
from knowledge_plane.cli.output import emit, fail, table
from knowledge_plane.domain.documents import TRUTH_LEVELS
from knowledge_plane.domain.quarantine import QuarantineError
from knowledge_plane.storage.object_store import open_object_store


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
    p = packs.add_parser(
        "allow", help="Let a pack's uploads publish into a namespace, up to a truth level (default L4)."
    )
    p.add_argument("pack_id")
    p.add_argument("--namespace", required=True)
    p.add_argument("--max-truth-level", choices=TRUTH_LEVELS, default="L4")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_packs_allow)
    p = packs.add_parser("revoke", help="Withdraw a pack's grant on a namespace.")
    p.add_argument("pack_id")
    p.add_argument("--namespace", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_packs_revoke)

    p = sub.add_parser("upload", help="Put a document into uploads/{tenant}/{pack}/ of the bucket.")
    p.add_argument("file", type=Path)
    p.add_argument("--pack-id", required=True)
    p.add_argument("--name", help="Object name under the pack (default: the file name).")
    p.add_argument("--source-app")
    p.add_argument("--caller-app")
    p.add_argument("--title")
    p.add_argument("--namespace", help="Target knowledge:* namespace (default knowledge:uploads).")
    p.add_argument("--truth-level", choices=TRUTH_LEVELS, help="Within the pack's grant (default: the grant's).")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_upload)


def cmd_packs_list(args: argparse.Namespace) -> int:
    packs = BuildContext(args.settings).packs
    data = [{**p, "may_publish": packs.allowed(p["pack_id"])} for p in packs.list()]
    emit(
        args.json,
        data,
        lambda d: table(
            [[p["pack_id"], p["name"], p["active"], _grants(p["may_publish"])] for p in d],
            ["pack", "name", "active", "may publish (namespace ≤ strongest truth level)"],
        ),
    )
    return 0


def _grants(allowed: dict[str, str]) -> str:
    return ", ".join(f"{ns} ≤ {level}" for ns, level in sorted(allowed.items()))


def cmd_packs_allow(args: argparse.Namespace) -> int:
    packs = BuildContext(args.settings).packs
    try:
        packs.allow(args.pack_id, args.namespace, args.max_truth_level)
    except (ValueError, LookupError) as exc:
        return fail(str(exc), args.json)
    data = {"pack_id": args.pack_id, "may_publish": packs.allowed(args.pack_id)}
    emit(args.json, data, lambda d: f"pack {d['pack_id']} may publish into {_grants(d['may_publish'])}")
    return 0


def cmd_packs_revoke(args: argparse.Namespace) -> int:
    packs = BuildContext(args.settings).packs
    try:
        packs.revoke(args.pack_id, args.namespace)
    except LookupError as exc:
        return fail(str(exc), args.json)
    data = {"pack_id": args.pack_id, "may_publish": packs.allowed(args.pack_id)}
    emit(args.json, data, lambda d: f"pack {d['pack_id']} may publish into {_grants(d['may_publish'])}")
    return 0


def cmd_packs_create(args: argparse.Namespace) -> int:
    try:
        BuildContext(args.settings).packs.create(args.pack_id, args.name)
    except ValueError as exc:
        return fail(str(exc), args.json)
    emit(args.json, {"pack_id": args.pack_id, "active": True}, lambda d: f"created pack {d['pack_id']}")
    return 0


def cmd_packs_set(args: argparse.Namespace) -> int:
    try:
        BuildContext(args.settings).packs.set_active(args.pack_id, args.active)
    except LookupError as exc:
        return fail(str(exc), args.json)
    state = "enabled" if args.active else "disabled"
    emit(args.json, {"pack_id": args.pack_id, "active": args.active}, lambda d: f"{state} pack {d['pack_id']}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    """Put a document in the bucket, after the check the build applies to it
    (knowledge_plane.build.uploads.check_upload)."""
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
