"""Read views over the store: the timeline of one subject/predicate and what held on a given day.

Subject and predicate are canonicalised through the ontology first, so "garantie" and
"Garantie des pièces" ask about the same thing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from knowledge_plane.facts.config import Ontology, load_ontology
from knowledge_plane.facts.model import APPROVED, CONFLICTED, PROPOSED, REJECTED, Fact
from knowledge_plane.facts.store import FactStore
from knowledge_plane.facts.temporal import parse_date


def canonical_key(subject: str, predicate: str, ontology: Ontology | None = None) -> tuple[str, str]:
    ontology = ontology or load_ontology()
    return ontology.subject(subject).key, ontology.predicate(predicate).key


def timeline(store: FactStore, tenant_id: str, subject: str, predicate: str,
             include_rejected: bool = False) -> list[dict[str, Any]]:
    """Every fact of a subject/predicate in validity order, each with its open and closed relations."""
    subject_key, predicate_key = canonical_key(subject, predicate)
    statuses = None if include_rejected else [PROPOSED, APPROVED, CONFLICTED]
    facts = store.list_facts(tenant_id, subject_key=subject_key, predicate_key=predicate_key, statuses=statuses)
    relations = store.list_relations(tenant_id, fact_ids=[f.id for f in facts]) if facts else []
    out = []
    for fact in facts:
        entry = fact.to_dict()
        entry["relations"] = [r.to_dict() for r in relations if fact.id in (r.from_id, r.to_id)]
        out.append(entry)
    return out


def facts_at(store: FactStore, tenant_id: str, subject: str, predicate: str, on: dt.date | str,
             statuses: Sequence[str] = (APPROVED,)) -> list[Fact]:
    """What held on a day: facts of the subject/predicate whose validity includes it (approved only
    unless other statuses are asked for; rejected facts never hold)."""
    day = parse_date(on, "date")
    if day is None:
        raise ValueError("a point-in-time query needs a date (YYYY-MM-DD)")
    subject_key, predicate_key = canonical_key(subject, predicate)
    wanted = [s for s in statuses if s != REJECTED]
    return store.facts_at(tenant_id, subject_key, predicate_key, day, wanted)
