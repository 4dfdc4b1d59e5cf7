"""YAML front matter: parsed before Docling (which would turn it into body text) and validated."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

from knowledge_plane.domain.documents import LANGUAGES, TRUTH_LEVELS
from knowledge_plane.domain.ids import DOC_ID_RE
from knowledge_plane.domain.quarantine import INVALID_FRONT_MATTER, QuarantineError

_FENCE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)
_DATE_KEYS = ("updated", "valid_from", "valid_until")


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Return (metadata, body). A file without a leading ``---`` fence has empty metadata."""
    if not text.startswith("---"):
        return {}, text
    match = _FENCE.match(text)
    if not match:
        raise QuarantineError(INVALID_FRONT_MATTER, "front matter opened with '---' is never closed")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise QuarantineError(INVALID_FRONT_MATTER, f"front matter is not valid YAML{where}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise QuarantineError(INVALID_FRONT_MATTER, "front matter must be a YAML mapping of keys to values")
    return validate_metadata(meta), text[match.end() :]


def _as_date(key: str, value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise QuarantineError(INVALID_FRONT_MATTER, f"'{key}' must be an ISO date (YYYY-MM-DD), got {value!r}")


def validate_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Check the keys the pipeline relies on; normalise dates to ISO strings."""
    meta = dict(meta)
    if "id" in meta:
        doc_id = meta["id"]
        if not isinstance(doc_id, str) or not DOC_ID_RE.match(doc_id):
            raise QuarantineError(
                INVALID_FRONT_MATTER,
                f"'id' must be lowercase letters, digits, '.', '_' or '-' (2-200 characters), got {doc_id!r}",
            )
    if "title" in meta and not (isinstance(meta["title"], str) and meta["title"].strip()):
        raise QuarantineError(INVALID_FRONT_MATTER, "'title' must be a non-empty string")
    if "truth_level" in meta and meta["truth_level"] not in TRUTH_LEVELS:
        raise QuarantineError(
            INVALID_FRONT_MATTER, f"'truth_level' must be one of {', '.join(TRUTH_LEVELS)}, got {meta['truth_level']!r}"
        )
    if "lang" in meta and meta["lang"] not in LANGUAGES:
        raise QuarantineError(INVALID_FRONT_MATTER,
                              f"'lang' must be one of {', '.join(LANGUAGES)}, got {meta['lang']!r}")
    for key in _DATE_KEYS:
        if meta.get(key) is not None:
            meta[key] = _as_date(key, meta[key])
    if meta.get("valid_from") and meta.get("valid_until") and meta["valid_until"] < meta["valid_from"]:
        raise QuarantineError(INVALID_FRONT_MATTER, "'valid_until' is before 'valid_from'")
    if "facts" in meta:
        facts = meta["facts"]
        if not isinstance(facts, list) or not all(isinstance(f, dict) for f in facts):
            raise QuarantineError(INVALID_FRONT_MATTER, "'facts' must be a list of mappings")
        for i, fact in enumerate(facts):
            missing = [k for k in ("subject", "predicate", "value") if k not in fact]
            if missing:
                raise QuarantineError(INVALID_FRONT_MATTER, f"facts[{i}] lacks {', '.join(missing)}")
            if fact.get("valid_from") is not None:
                fact["valid_from"] = _as_date(f"facts[{i}].valid_from", fact["valid_from"])
            if fact.get("valid_until") is not None:
                fact["valid_until"] = _as_date(f"facts[{i}].valid_until", fact["valid_until"])
    if "tags" in meta and not isinstance(meta["tags"], list):
        raise QuarantineError(INVALID_FRONT_MATTER, "'tags' must be a list")
    return meta
