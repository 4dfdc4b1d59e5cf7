"""Publication: the approved facts of a namespace as the snapshot each index version carries.

The snapshot is what the read-only query service sees of facts; it is sorted and holds only
approved facts, so the same approvals always give the same ``facts.jsonl``.
"""

from __future__ import annotations

from typing import Any

from knowledge_plane.facts.model import APPROVED
from knowledge_plane.facts.store import FactStore

SNAPSHOT_FIELDS = ("id", "subject", "predicate", "object", "value", "unit", "value_type", "fact_type", "valid_from",
                   "valid_until", "source", "source_path", "source_chunk_id", "confidence", "approved_by",
                   "approved_at", "subject_key", "predicate_key")


def approved_facts_snapshot(store: FactStore, tenant_id: str, namespace: str) -> list[dict[str, Any]]:
    """Approved facts of a namespace: subject, predicate, value, unit, validity, source
    ``doc_id@doc_version``, confidence and fact id (plus the object as written and the keys that
    ``match.match_facts`` uses), ordered by subject, predicate, valid_from, id."""
    facts = store.list_facts(tenant_id, namespace=namespace, statuses=[APPROVED])
    rows = []
    for fact in facts:
        data = fact.to_dict()
        rows.append({name: data[name] for name in SNAPSHOT_FIELDS})
    return sorted(rows, key=lambda r: (r["subject_key"], r["predicate_key"], r["valid_from"] or "", r["id"]))
