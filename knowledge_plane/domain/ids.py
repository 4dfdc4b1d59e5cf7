"""Identifiers derived from content, never from position: the same input always yields the same ids."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable

TENANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DOC_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,199}$")
NAMESPACE_RE = re.compile(r"^(knowledge|internal):[a-z0-9][a-z0-9_-]{0,63}$")


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def chunk_id(doc_id: str, doc_version: str, text: str) -> str:
    """A chunk's id: stable for the same document version and text, wherever the chunk sits."""
    return sha256_hex(f"{doc_id}\x1f{doc_version}\x1f{text}")[:32]


def text_hash(text: str) -> str:
    """Key of the embedding cache: what the model actually reads."""
    return sha256_hex(text)


def validate_tenant_id(tenant_id: str) -> str:
    if not TENANT_ID_RE.match(tenant_id):
        raise ValueError(
            f"invalid tenant id {tenant_id!r}: expected lowercase letters, digits, '_' or '-', 1-64 characters"
        )
    return tenant_id


def validate_namespace(namespace: str) -> str:
    if not NAMESPACE_RE.match(namespace):
        raise ValueError(
            f"invalid namespace {namespace!r}: expected 'knowledge:<name>' or 'internal:<name>' "
            "with lowercase letters, digits, '_' or '-'"
        )
    return namespace


def namespace_entry(keys: Iterable[str], namespace: str) -> str | None:
    """Which key of a per-namespace setting applies to ``namespace``: the namespace itself, else the
    longest pattern matching it (``knowledge:*``, ``*``), else None."""
    keys = list(keys)
    if namespace in keys:
        return namespace
    patterns = [k for k in keys if "*" in k and fnmatch.fnmatchcase(namespace, k)]
    return max(patterns, key=len) if patterns else None


def namespace_slug(namespace: str) -> str:
    """A file-system safe form of a namespace (``knowledge:faq`` → ``knowledge-faq``)."""
    return validate_namespace(namespace).replace(":", "-")


def doc_id_from_path(relative_path: str) -> str:
    """Fallback document id when no front matter gives one: the path, lowercased and dotted."""
    stem = relative_path.rsplit(".", 1)[0] if "." in relative_path.rsplit("/", 1)[-1] else relative_path
    return re.sub(r"[^a-z0-9._-]+", ".", stem.lower()).strip(".")
