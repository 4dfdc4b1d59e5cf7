"""Uploads: ``uploads/{tenant_id}/{pack_id}/…`` objects, their metadata, and why one is refused.

Tenant and pack come from the key; the rest (source_app, caller_app, title, tags, language,
namespace) from the object's user metadata or a ``<name>.meta.json`` sidecar object. An object's
ETag, size and metadata identify its content, so an unchanged upload is never downloaded again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from core.ids import NAMESPACE_RE, sha256_hex
from core.object_store import ObjectInfo, ObjectMissing, ObjectStore
from core.parsing import SUPPORTED_SUFFIXES
from core.quarantine import EMPTY_FILE, INVALID_SOURCE, TOO_LARGE, UNSUPPORTED_TYPE, QuarantinedFile

UPLOADS_PREFIX = "uploads"
ARTIFACTS_PREFIX = "artifacts"
DEFAULT_UPLOAD_NAMESPACE = "knowledge:uploads"
PACK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
APP_NAME_RE = re.compile(r"^[a-z0-9_-]{2,64}$")
SIDECAR = ".meta.json"
METADATA_KEYS = ("source_app", "caller_app", "title", "tags", "language", "namespace")


@dataclass(frozen=True)
class Upload:
    key: str
    tenant_id: str
    pack_id: str
    size: int
    etag: str
    namespace: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return sha256_hex(json.dumps([self.etag, self.size, self.metadata], sort_keys=True))


def parse_key(key: str, tenant_id: str) -> tuple[str, str]:
    """(tenant_id, pack_id) of an upload key, or ValueError saying what is wrong with it."""
    parts = key.split("/")
    if ".." in parts or key.startswith("/") or "\\" in key or "" in parts[:-1]:
        raise ValueError(f"unsafe object key {key!r} ('..', absolute or empty path segments)")
    if len(parts) < 4 or parts[0] != UPLOADS_PREFIX:
        raise ValueError(f"key {key!r} is not uploads/<tenant_id>/<pack_id>/<name>")
    tenant, pack = parts[1], parts[2]
    if tenant != tenant_id:
        raise ValueError(f"unknown tenant {tenant!r}: this deployment serves tenant {tenant_id!r}")
    if not PACK_ID_RE.match(pack):
        raise ValueError(f"malformed pack id {pack!r}: expected lowercase letters, digits, '_' or '-' (2-64)")
    return tenant, pack


def _normalise_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in raw.items() if k in METADATA_KEYS and v not in (None, "")}
    if isinstance(meta.get("tags"), str):
        meta["tags"] = [t.strip() for t in meta["tags"].split(",") if t.strip()]
    for app in ("source_app", "caller_app"):
        if app in meta and not APP_NAME_RE.match(str(meta[app])):
            raise ValueError(f"{app} {meta[app]!r} does not match ^[a-z0-9_-]{{2,64}}$")
    namespace = meta.get("namespace", DEFAULT_UPLOAD_NAMESPACE)
    if not NAMESPACE_RE.match(str(namespace)) or not str(namespace).startswith("knowledge:"):
        raise ValueError(f"namespace {namespace!r} is not a knowledge:<name> namespace")
    meta["namespace"] = namespace
    return meta


def scan_uploads(
    store: ObjectStore, tenant_id: str, max_bytes: int, known_namespaces: set[str], disabled_packs: set[str]
) -> tuple[list[Upload], list[tuple[str, QuarantinedFile]]]:
    """Every valid upload of the tenant, and the refused ones as (namespace, quarantine)."""
    listing = list(store.list(f"{UPLOADS_PREFIX}/{tenant_id}/"))
    objects = {o.key: o for o in listing}
    uploads: list[Upload] = []
    refused: list[tuple[str, QuarantinedFile]] = []

    def refuse(info: ObjectInfo, reason: str, detail: str, namespace: str = DEFAULT_UPLOAD_NAMESPACE) -> None:
        refused.append((namespace, QuarantinedFile(info.key, reason, detail, "raw")))

    for info in listing:
        if info.key.endswith(SIDECAR):
            continue
        try:
            _, pack = parse_key(info.key, tenant_id)
        except ValueError as exc:
            refuse(info, INVALID_SOURCE, str(exc))
            continue
        if pack in disabled_packs:
            refuse(info, INVALID_SOURCE, f"pack {pack!r} is disabled")
            continue
        try:
            head = store.head(info.key)
            sidecar = objects.get(info.key + SIDECAR)
            raw_meta: dict[str, Any] = dict(head.metadata)
            if sidecar is not None:
                raw_meta.update(json.loads(store.get(sidecar.key).decode("utf-8")))
            meta = _normalise_metadata(raw_meta)
        except ObjectMissing:
            continue  # deleted since the listing: simply not part of this build
        except (ValueError, UnicodeDecodeError) as exc:
            refuse(info, INVALID_SOURCE, f"bad metadata: {exc}")
            continue
        namespace = meta["namespace"]
        if namespace not in known_namespaces:
            refuse(info, INVALID_SOURCE, f"namespace {namespace!r} does not exist; known: {sorted(known_namespaces)}")
            continue
        suffix = PurePosixPath(info.key).suffix.lower()
        if head.size == 0:
            refuse(info, EMPTY_FILE, "the object is empty (0 bytes)", namespace)
        elif head.size > max_bytes:
            refuse(info, TOO_LARGE, f"{head.size} bytes is above the limit of {max_bytes} bytes", namespace)
        elif suffix not in SUPPORTED_SUFFIXES:
            refuse(info, UNSUPPORTED_TYPE, f"no parser for '{suffix or 'no extension'}' objects", namespace)
        else:
            uploads.append(
                Upload(info.key, tenant_id, pack, head.size, head.etag, namespace, {**meta, "pack_id": pack})
            )
    return uploads, refused
