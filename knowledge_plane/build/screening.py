"""Screening one parsed document before it is chunked: no secret anywhere it could be served, and no
personal data in a customer-facing ``knowledge:*`` namespace.

Everything that can reach an index or a response is read: the file name, the title, every
metadata value (front matter, sidecar, upload metadata), each section's heading path, location and
text (tables included, after the parser decoded HTML entities and JSON escapes) and, for text
formats, the raw file as well (front matter, what a parser might drop). A finding quarantines the
document; the corpus' allowlist (``knowledge_plane.build.secrets.Allowlist``) and the inline marker let a reviewed
one through.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from knowledge_plane.build.personal_data import find_personal_data
from knowledge_plane.build.secrets import Allowlist, SecretFinding, scan_parts
from knowledge_plane.domain.documents import ParsedDocument
from knowledge_plane.domain.quarantine import PERSONAL_DATA, SECRET_DETECTED, QuarantineError

DATA_SUFFIXES = {".csv", ".xlsx", ".json"}
# Plain text and Python sections are slices of the raw file, which is scanned whole.
RAW_IS_TEXT = {".txt", ".py"}
# Raw HTML is not scanned: markup splits a value from its name and attributes look like keys; the
# text Docling extracts (entities decoded) is what could be served, and that is scanned.
MARKUP_SUFFIXES = {".html", ".htm"}
MAX_LISTED = 5
MAX_ENTRIES = 10  # baseline entries printed; a file with more findings is hardly a reviewed example


def _metadata_parts(label: str, meta: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [
        (f"{label} '{key}'", value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
        for key, value in (meta or {}).items()
    ]


def screen_document(
    doc: ParsedDocument,
    *,
    raw_text: str | None,
    upload_meta: dict[str, Any] | None = None,
    allowlist: Allowlist | None = None,
) -> list[str]:
    """Raise QuarantineError if the document holds a secret (or personal data in ``knowledge:*``);
    else return the fingerprints of the reviewed findings it was let through with."""
    suffix = PurePosixPath(doc.source_path).suffix.lower()
    is_data_file = suffix in DATA_SUFFIXES
    fields = [
        ("the file name", doc.source_path),
        ("the title", doc.title),
        *_metadata_parts("metadata", doc.meta),
        *_metadata_parts("upload metadata", upload_meta),
    ]
    sections = [] if suffix in RAW_IS_TEXT else doc.sections
    # A place is named by the section's number, never by its heading: the heading may be the secret.
    for number, section in enumerate(sections, start=1):
        fields.append((f"the heading path of section {number}", " > ".join(section.heading_path)))
        fields.append((f"the location of section {number}", section.location))
    allowed = set(allowlist.for_path(doc.source_path)) if allowlist else set()
    scans = [(fields, "metadata.yaml", False)]
    if raw_text is not None and suffix not in MARKUP_SUFFIXES:
        scans.append(([("", raw_text)], doc.source_path, is_data_file))
    for table in (False, True):
        parts = [(f"section {n}", s.text) for n, s in enumerate(sections, start=1) if (s.kind == "table") is table]
        scans.append((parts, doc.source_path, is_data_file or table))
    secrets: list[SecretFinding] = []
    for parts, filename, data_like in scans:
        if parts:
            found, inline = scan_parts(parts, filename=filename, data_like=data_like)
            secrets += found
            allowed |= inline
    _refuse(SECRET_DETECTED, "a secret", doc.source_path, secrets, allowed, allowlist)
    if doc.namespace.startswith("knowledge:"):
        parts = [(where, text, False) for where, text in fields]
        if raw_text is not None and (suffix in RAW_IS_TEXT or is_data_file):
            parts.append(("", raw_text, is_data_file))
        parts += [(f"section {n}", s.text, is_data_file or s.kind == "table") for n, s in enumerate(sections, start=1)]
        personal = find_personal_data(parts)
        _refuse(PERSONAL_DATA, "personal data", doc.source_path, personal, allowed, allowlist)
    return sorted(allowed)


def _refuse(
    reason: str,
    what: str,
    source_path: str,
    findings: list[SecretFinding],
    allowed: set[str],
    allowlist: Allowlist | None,
) -> None:
    unique = {(f.kind, f.where, f.line, f.fingerprint): f for f in findings if f.fingerprint not in allowed}
    if not unique:
        return
    listed = list(unique.values())[:MAX_LISTED]
    found = "; ".join(f"{f.describe()} (fingerprint {f.fingerprint[:12]})" for f in listed)
    more = f" and {len(unique) - len(listed)} more" if len(unique) > len(listed) else ""
    how = (allowlist or Allowlist({})).how_to_allow(source_path, list(unique.values())[:MAX_ENTRIES])
    raise QuarantineError(reason, f"{what}: {found}{more}; {how}")
