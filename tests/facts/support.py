"""Helpers of the fact tests: facts and parsed documents built the way extraction builds them."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from knowledge_plane.facts.config import load_ontology, load_rules
from knowledge_plane.facts.model import Fact, fact_uuid
from knowledge_plane.facts.temporal import parse_date

NAMESPACE = "knowledge:facts-test"


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def make_fact(
    tenant_id: str,
    value: Any = 0.997,
    unit: str | None = "%",
    *,
    subject: str = "service",
    predicate: str = "SLA",
    valid_from: str | None = "2024-01-01",
    valid_until: str | None = None,
    doc: str = "sla-a",
    status: str = "proposed",
    fact_type: str = "SERVICE_LEVEL",
    namespace: str = NAMESPACE,
    confidence: float = 0.9,
) -> Fact:
    """A fact as the extractor would produce it from ``value`` + ``unit`` written in document ``doc``."""
    ontology, rules = load_ontology(), load_rules()
    s, p = ontology.subject(subject), ontology.predicate(predicate)
    quantity = rules.quantity(value, unit)
    start = parse_date(valid_from)
    return Fact(
        id=fact_uuid(tenant_id, doc, s.key, p.key, quantity.value, start),
        tenant_id=tenant_id,
        namespace=namespace,
        subject=s.label,
        subject_key=s.key,
        predicate=p.label,
        predicate_key=p.key,
        object=quantity.written,
        value=quantity.value,
        unit=quantity.unit,
        value_type=quantity.value_type,
        fact_type=fact_type,
        source_document=doc,
        source_version="v1",
        source_path=f"{doc}.md",
        source_hash="h" * 16,
        status=status,
        confidence=confidence,
        valid_from=start,
        valid_until=parse_date(valid_until),
    )


def document(
    doc_id: str,
    body: str | list[str],
    *,
    valid_from: str | None = None,
    valid_until: str | None = None,
    updated: str | None = "2024-01-01",
    facts: list[dict[str, Any]] | None = None,
    title: str | None = None,
    namespace: str = NAMESPACE,
    truth_level: str = "L1",
    entity_type: str | None = None,
) -> dict[str, Any]:
    """A parsed-document record (the ``parsed_documents`` stage shape) with one section per paragraph."""
    paragraphs = [body] if isinstance(body, str) else body
    meta: dict[str, Any] = {"id": doc_id}
    for key, value in (
        ("valid_from", valid_from),
        ("valid_until", valid_until),
        ("updated", updated),
        ("facts", facts),
        ("title", title),
        ("entity_type", entity_type),
    ):
        if value is not None:
            meta[key] = value
    text = "\n".join(paragraphs)
    return {
        "doc_id": doc_id,
        "doc_version": hashlib.sha256(text.encode()).hexdigest()[:12],
        "title": title or doc_id,
        "namespace": namespace,
        "source_path": f"{doc_id}.md",
        "content_hash": hashlib.sha256(text.encode()).hexdigest(),
        "truth_level": truth_level,
        "lang": "fr",
        "updated": updated,
        "parser": "test",
        "sections": [
            {"heading_path": [], "text": p, "location": f"¶{i}", "kind": "table" if p.startswith("|") else "prose"}
            for i, p in enumerate(paragraphs)
        ],
        "meta": meta,
    }


def chunks_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One chunk per section, with ids derived like the chunker's (doc, version, text)."""
    return [
        {
            "chunk_id": hashlib.sha256(f"{doc['doc_id']}|{s['text']}".encode()).hexdigest()[:32],
            "doc_id": doc["doc_id"],
            "doc_version": doc["doc_version"],
            "text": s["text"],
        }
        for s in doc["sections"]
    ]
