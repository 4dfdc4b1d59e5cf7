"""The fact model: facts, the relations between two facts, audit entries, extraction state, entity types.

A fact's id is a uuid5 of what makes it the same statement (tenant, source document, subject,
predicate, normalised value, valid_from), so extracting an unchanged document again finds the
facts it already holds instead of creating new ones.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from knowledge_plane.facts.normalize import format_number, norm_key
from knowledge_plane.facts.temporal import Day, iso, parse_date

PROPOSED, APPROVED, REJECTED, CONFLICTED = "proposed", "approved", "rejected", "conflicted"
STATUSES = (PROPOSED, APPROVED, REJECTED, CONFLICTED)

CONTRADICTS, OVERRIDES, DUPLICATES, OUTDATED = "CONTRADICTS", "OVERRIDES", "DUPLICATES", "OUTDATED"
RELATION_KINDS = (CONTRADICTS, OVERRIDES, DUPLICATES, OUTDATED)
OPEN, RESOLVED = "open", "resolved"
SEVERITIES = ("low", "medium", "high", "critical")

TYPE_PENDING, TYPE_APPROVED, TYPE_REJECTED = "pending", "approved", "rejected"
TYPE_STATUSES = (TYPE_PENDING, TYPE_APPROVED, TYPE_REJECTED)

_FACT_NS = uuid.UUID("6f1c2d0a-5b7e-4c1f-9a51-2f6c0e8b7d31")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def value_key(value: float | str | None) -> str:
    """The value as it enters ids and comparisons: 0.997 for "99,7 %" and for 0.997 alike."""
    if isinstance(value, float):
        return format_number(value)
    return norm_key(value) if value is not None else ""


def fact_uuid(tenant_id: str, source_document: str, subject_key: str, predicate_key: str,
              value: float | str | None, valid_from: Day) -> str:
    """Deterministic fact id: the same statement from the same document always gets the same id."""
    parts = [tenant_id, source_document, subject_key, predicate_key, value_key(value), iso(valid_from) or ""]
    name = "\x1f".join(parts)
    return str(uuid.uuid5(_FACT_NS, name))


@dataclass
class Fact:
    """One statement with its provenance and its (bi-temporal) validity.

    valid_from/valid_until say when the statement holds in the world; created_at/updated_at say
    when the store learnt or changed it.
    """

    id: str
    tenant_id: str
    namespace: str
    subject: str
    subject_key: str
    predicate: str
    predicate_key: str
    object: str  # as written in the source
    value: float | str | None
    unit: str | None
    value_type: str  # number | text
    fact_type: str
    source_document: str
    source_version: str = ""
    source_path: str = ""
    source_chunk_id: str | None = None
    source_hash: str = ""
    extraction_method: str = "front_matter"
    extraction_model: str | None = None
    prompt_id: str | None = None
    entity_type: str | None = None
    status: str = PROPOSED
    confidence: float = 0.5
    valid_from: Day = None
    valid_until: Day = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    reason: str | None = None
    merged_into: str | None = None

    @property
    def source(self) -> str:
        return f"{self.source_document}@{self.source_version}" if self.source_version else self.source_document

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings."""
        data = asdict(self)
        for key in ("valid_from", "valid_until"):
            data[key] = iso(data[key])
        for key in ("created_at", "updated_at", "approved_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["source"] = self.source
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fact:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("valid_from", "valid_until"):
            values[key] = parse_date(values.get(key), key)
        for key in ("created_at", "updated_at", "approved_at"):
            raw = values.get(key)
            if isinstance(raw, str):
                values[key] = dt.datetime.fromisoformat(raw)
        if values.get("value_type") == "number" and values.get("value") is not None:
            values["value"] = float(values["value"])
        return cls(**values)


def relation_id(tenant_id: str, kind: str, from_id: str, to_id: str) -> str:
    return str(uuid.uuid5(_FACT_NS, "\x1f".join(["relation", tenant_id, kind, from_id, to_id])))


@dataclass
class Relation:
    """A detected relation between two facts of the same tenant, subject and predicate.

    Direction: CONTRADICTS and DUPLICATES go from the smaller id to the larger (they are
    symmetric); OVERRIDES goes from the newer fact to the one it overrides; OUTDATED goes from the
    older, still open-ended fact to the newer approved fact that outdates it.
    """

    tenant_id: str
    kind: str
    from_id: str
    to_id: str
    severity: str = "low"
    value_diff_pct: float | None = None
    status: str = OPEN
    detected_at: dt.datetime = field(default_factory=_now)
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def id(self) -> str:
        return relation_id(self.tenant_id, self.kind, self.from_id, self.to_id)

    def other(self, fact_id: str) -> str:
        return self.to_id if fact_id == self.from_id else self.from_id

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = self.id
        for key in ("detected_at", "resolved_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass
class AuditEntry:
    """One change made to the store, by whom, and what it was before and after."""

    tenant_id: str
    action: str
    actor: str
    fact_id: str | None = None
    relation_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass
class SourceState:
    """What the extractor last saw of one document: content hash and extractor version."""

    doc_id: str
    content_hash: str
    extractor_version: str
    llm_content_hash: str | None = None
    llm_model: str | None = None
    facts: int = 0
    extracted_at: dt.datetime = field(default_factory=_now)


@dataclass
class EntityType:
    """A type of subject, registered on first sight; pending until an admin decides."""

    tenant_id: str
    type_name: str
    status: str = TYPE_PENDING
    first_seen_at: dt.datetime = field(default_factory=_now)
    decided_by: str | None = None
    decided_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("first_seen_at", "decided_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data
