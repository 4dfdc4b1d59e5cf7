"""The promotion gate on facts: a namespace with an unresolved critical CONTRADICTS is not promoted.

Which fact types make a contradiction critical is set in rules.yaml (``critical_fact_types``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from knowledge_plane.facts.model import CONTRADICTS, OPEN, RELATION_KINDS, Relation
from knowledge_plane.facts.store import FactStore


def open_relations(store: FactStore, tenant_id: str, namespace: str,
                   kinds: Sequence[str] = RELATION_KINDS) -> list[Relation]:
    """Open relations with at least one end among the namespace's facts."""
    ids = [f.id for f in store.list_facts(tenant_id, namespace=namespace)]
    return store.list_relations(tenant_id, fact_ids=ids, kinds=kinds, status=OPEN) if ids else []


def critical_conflicts(store: FactStore, tenant_id: str, namespace: str) -> list[dict[str, Any]]:
    """Unresolved CONTRADICTS of critical severity touching the namespace, with both facts described.

    An empty list means the gate passes.
    """
    relations = [r for r in open_relations(store, tenant_id, namespace, [CONTRADICTS]) if r.severity == "critical"]
    facts = {f.id: f for f in store.get_facts(tenant_id, {i for r in relations for i in (r.from_id, r.to_id)})}
    out = []
    for relation in relations:
        entry = relation.to_dict()
        entry["facts"] = [
            {"id": f.id, "subject": f.subject, "predicate": f.predicate, "object": f.object, "fact_type": f.fact_type,
             "status": f.status, "valid_from": f.to_dict()["valid_from"], "source": f.source}
            for f in (facts.get(relation.from_id), facts.get(relation.to_id)) if f is not None]
        out.append(entry)
    return out
