"""Uploads: ``uploads/{tenant_id}/{pack_id}/…`` objects, their metadata, and why one is refused.

Tenant and pack come from the key; the rest (source_app, workspace, caller_app, title, tags,
language, namespace, truth_level) from the object's user metadata or a ``<name>.meta.json`` sidecar object.
An object's ETag, size and metadata identify its content, so an unchanged upload is never
downloaded again.

Where an upload may publish, and how far it may be trusted there, is the pack's grant
(knowledge_plane/storage/packs.py), not the uploader's word: an upload asking for a namespace or a truth level its
pack was not granted is refused, and one that does not say gets its grant's level. ``check_upload``
is the one check: the build applies it to every object, ``knowledge upload`` before it puts one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from knowledge_plane.build.parsing import SUPPORTED_SUFFIXES
from knowledge_plane.domain.documents import LANGUAGES, TRUTH_LEVELS
from knowledge_plane.domain.ids import NAMESPACE_RE, sha256_hex
from knowledge_plane.domain.quarantine import (
    EMPTY_FILE,
    INVALID_SOURCE,
    METADATA_TOO_LARGE,
    NAMESPACE_NOT_ALLOWED,
    TOO_LARGE,
    TRUTH_LEVEL_NOT_ALLOWED,
    UNSUPPORTED_TYPE,
    QuarantinedFile,
    QuarantineError,
    check_file_name,
    printable,
)
from knowledge_plane.storage.object_store import ObjectMissing, ObjectStore
from knowledge_plane.storage.packs import (
    DEFAULT_GRANTS,
    DEFAULT_UPLOAD_NAMESPACE,
    PACK_ID_RE,
)

UPLOADS_PREFIX = "uploads"
ARTIFACTS_PREFIX = "artifacts"
APP_NAME_RE = re.compile(r"^[a-z0-9_-]{2,64}$")
UNKNOWN_CALLER_APP = "unknown"
SIDECAR = ".meta.json"
METADATA_KEYS = ("source_app", "workspace", "caller_app", "title", "tags", "language", "namespace", "truth_level")
MAX_TRUTH_LEVEL = "max_truth_level"  # the grant, carried in the upload's metadata to the parse stage


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


@dataclass(frozen=True)
class UploadRules:
    """What the build plane accepts from the bucket, read once per build (and by ``knowledge upload``)."""

    tenant_id: str
    max_bytes: int
    max_metadata_bytes: int
    known_namespaces: frozenset[str]
    disabled_packs: frozenset[str] = frozenset()
    grants: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # pack → {namespace: level}
    # The registered, active caller apps when ENFORCE_CALLER_APP_REGISTRY is true; None: any well-formed name.
    caller_apps: frozenset[str] | None = None

    def allowed(self, pack_id: str) -> dict[str, str]:
        return {**DEFAULT_GRANTS, **self.grants.get(pack_id, {})}


class UploadRefused(QuarantineError):
    """An upload the build will not take; ``namespace`` is where the refusal is reported."""

    def __init__(self, reason: str, detail: str, namespace: str = DEFAULT_UPLOAD_NAMESPACE):
        super().__init__(reason, detail)
        self.namespace = namespace


def _stronger(level: str, than: str) -> bool:
    return TRUTH_LEVELS.index(level) < TRUTH_LEVELS.index(than)  # L1 is the most trusted


def check_metadata_size(size: int, max_bytes: int) -> None:
    """Refuse metadata (object metadata, a sidecar) before it is read: a 20 MB sidecar cost 3 GB."""
    if size > max_bytes:
        raise UploadRefused(
            METADATA_TOO_LARGE,
            f"{size} bytes of metadata is above the limit of {max_bytes} bytes (KNOWLEDGE_MAX_METADATA_BYTES)",
        )


def _normalise_metadata(raw: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in raw.items() if k in METADATA_KEYS and v not in (None, "")}
    if isinstance(meta.get("tags"), str):
        meta["tags"] = [t.strip() for t in meta["tags"].split(",") if t.strip()]
    for app in ("source_app", "workspace", "caller_app"):
        if app in meta and not APP_NAME_RE.match(str(meta[app])):
            raise ValueError(f"{app} {meta[app]!r} does not match ^[a-z0-9_-]{{2,64}}$")
    if "truth_level" in meta and meta["truth_level"] not in TRUTH_LEVELS:
        raise ValueError(f"truth_level must be one of {', '.join(TRUTH_LEVELS)}, got {meta['truth_level']!r}")
    if "language" in meta and meta["language"] not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {meta['language']!r}")
    namespace = meta.get("namespace", DEFAULT_UPLOAD_NAMESPACE)
    if not NAMESPACE_RE.match(str(namespace)) or not str(namespace).startswith("knowledge:"):
        raise ValueError(f"namespace {namespace!r} is not a knowledge:<name> namespace")
    meta["namespace"] = namespace
    return meta


def check_key(key: str, rules: UploadRules) -> str:
    """The pack of an acceptable object key (safe name, this tenant, an active pack), or UploadRefused."""
    try:
        check_file_name(key)
    except QuarantineError as exc:
        raise UploadRefused(exc.reason, exc.detail) from None
    try:
        _, pack = parse_key(key, rules.tenant_id)
    except ValueError as exc:
        raise UploadRefused(INVALID_SOURCE, str(exc)) from None
    if pack in rules.disabled_packs:
        raise UploadRefused(INVALID_SOURCE, f"pack {pack!r} is disabled")
    return pack


def check_upload(key: str, size: int, raw_meta: dict[str, Any], rules: UploadRules) -> tuple[str, dict[str, Any]]:
    """(pack_id, metadata) of an upload the build will take, or UploadRefused saying why not.

    The metadata returned carries the pack and the strongest truth level its grant allows there.
    """
    pack = check_key(key, rules)
    check_metadata_size(len(json.dumps(raw_meta, ensure_ascii=False).encode("utf-8")), rules.max_metadata_bytes)
    try:
        meta = _normalise_metadata(raw_meta)
    except ValueError as exc:
        raise UploadRefused(INVALID_SOURCE, f"bad metadata: {exc}") from None
    # The query service's caller_app rules: absent is `unknown`; with the registry enforced, a name
    # that is not registered and active is refused, as the service answers 400 to it.
    meta["caller_app"] = meta.get("caller_app", UNKNOWN_CALLER_APP)
    if rules.caller_apps is not None and meta["caller_app"] not in rules.caller_apps:
        raise UploadRefused(
            INVALID_SOURCE,
            f"caller_app {meta['caller_app']!r} is not a registered, active caller app "
            f"(ENFORCE_CALLER_APP_REGISTRY=true); an operator registers it in the governance console")
    namespace = meta["namespace"]
    if namespace not in rules.known_namespaces:
        raise UploadRefused(
            INVALID_SOURCE, f"namespace {namespace!r} does not exist; known: {sorted(rules.known_namespaces)}"
        )
    allowed = rules.allowed(pack)
    if namespace not in allowed:
        raise UploadRefused(
            NAMESPACE_NOT_ALLOWED,
            f"pack {pack!r} may not publish into {namespace!r} (it may publish into {', '.join(sorted(allowed))}); "
            f"an operator grants it with `knowledge packs allow {pack} --namespace {namespace}`",
            namespace,
        )
    check_truth_level(meta.get("truth_level"), pack, namespace, allowed[namespace], "its metadata")
    suffix = PurePosixPath(key).suffix.lower()
    if size == 0:
        raise UploadRefused(EMPTY_FILE, "the object is empty (0 bytes)", namespace)
    if size > rules.max_bytes:
        raise UploadRefused(TOO_LARGE, f"{size} bytes is above the limit of {rules.max_bytes} bytes", namespace)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UploadRefused(UNSUPPORTED_TYPE, f"no parser for '{suffix or 'no extension'}' objects", namespace)
    return pack, {**meta, "pack_id": pack, MAX_TRUTH_LEVEL: allowed[namespace]}


def check_truth_level(asked: str | None, pack: str, namespace: str, limit: str, where: str) -> None:
    """Refuse a truth level stronger than the pack's grant on the namespace."""
    if asked and _stronger(asked, limit):
        raise UploadRefused(
            TRUTH_LEVEL_NOT_ALLOWED,
            f"{where} asks for truth level {asked}, but pack {pack!r} may publish into {namespace!r} at {limit} "
            f"at most; an operator raises it with `knowledge packs allow {pack} --namespace {namespace} "
            f"--max-truth-level {asked}`",
            namespace,
        )


def upload_truth_level(upload_meta: dict[str, Any], front_matter: dict[str, Any]) -> str:
    """An uploaded document's truth level: what its upload metadata asks for, else what its own front
    matter asks for, never stronger than its pack's grant (UploadRefused); asking nothing gets the grant's."""
    limit = upload_meta[MAX_TRUTH_LEVEL]
    asked, where = upload_meta.get("truth_level"), "its metadata"
    if not asked:
        asked, where = front_matter.get("truth_level"), "the document's front matter"
    check_truth_level(asked, upload_meta["pack_id"], upload_meta["namespace"], limit, where)
    return asked or limit


def _read_sidecar(data: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UploadRefused(INVALID_SOURCE, f"bad metadata: the sidecar is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise UploadRefused(INVALID_SOURCE, "bad metadata: the sidecar is not a JSON object")
    return meta


def scan_uploads(store: ObjectStore, rules: UploadRules) -> tuple[list[Upload], list[tuple[str, QuarantinedFile]]]:
    """Every valid upload of the tenant, and the refused ones as (namespace, quarantine)."""
    listing = list(store.list(f"{UPLOADS_PREFIX}/{rules.tenant_id}/"))
    objects = {o.key: o for o in listing}
    uploads: list[Upload] = []
    refused: list[tuple[str, QuarantinedFile]] = []
    for info in listing:
        if info.key.endswith(SIDECAR):
            continue
        try:
            check_key(info.key, rules)  # before the key is used to read anything
            head = store.head(info.key)
            raw_meta: dict[str, Any] = dict(head.metadata)
            sidecar = objects.get(info.key + SIDECAR)
            if sidecar is not None:
                check_metadata_size(sidecar.size, rules.max_metadata_bytes)
                raw_meta.update(_read_sidecar(store.get(sidecar.key)))
            pack, meta = check_upload(info.key, head.size, raw_meta, rules)
        except ObjectMissing:
            continue  # deleted since the listing: simply not part of this build
        except QuarantineError as exc:
            namespace = getattr(exc, "namespace", DEFAULT_UPLOAD_NAMESPACE)
            refused.append((namespace, QuarantinedFile(printable(info.key), exc.reason, exc.detail, "raw")))
            continue
        uploads.append(Upload(info.key, rules.tenant_id, pack, head.size, head.etag, meta["namespace"], meta))
    return uploads, refused
