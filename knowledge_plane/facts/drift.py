"""Drift between what an index publishes about facts and what the fact store holds.

The index side is given as its payload rows: chunk payloads (``doc_id``, optional ``fact_ids``)
and/or facts.jsonl rows (``id``, ``source`` "doc_id@version"), or plain fact ids. Three kinds of
drift are reported:

- ``dangling``: fact ids the index references that the store no longer holds approved (the index
  is stale: publish a new version);
- ``orphans``: approved facts whose source document no index payload contains any more (their
  provenance is gone: removed from the store when asked, with an audit entry each);
- ``unpublished``: approved facts of indexed documents the index does not carry yet.

drift % = (dangling + orphans + unpublished) / |approved facts ∪ referenced ids| × 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from knowledge_plane.facts.model import APPROVED, AuditEntry
from knowledge_plane.facts.store import FactStore


def _refs(payloads: Iterable[Mapping[str, Any] | str]) -> tuple[set[str], set[str]]:
    fact_ids: set[str] = set()
    doc_ids: set[str] = set()
    for row in payloads:
        if isinstance(row, str):
            fact_ids.add(row)
            continue
        for key in ("fact_id", "id"):
            if row.get(key) and ("source" in row or key == "fact_id"):
                fact_ids.add(str(row[key]))
        fact_ids.update(str(i) for i in row.get("fact_ids") or [])
        if row.get("doc_id"):
            doc_ids.add(str(row["doc_id"]))
        elif row.get("source"):
            doc_ids.add(str(row["source"]).split("@", 1)[0])
    return fact_ids, doc_ids


def drift_report(store: FactStore, tenant_id: str, index_payload_fact_refs: Iterable[Mapping[str, Any] | str],
                 remove_orphans: bool = False, *, namespace: str | None = None,
                 actor: str = "drift-check") -> dict[str, Any]:
    """Compare index payloads with the store's approved facts (of one namespace when given).

    Orphans are only computed when the payloads name documents (plain id lists cannot tell).
    """
    referenced, indexed_docs = _refs(index_payload_fact_refs)
    approved = {f.id: f for f in store.list_facts(tenant_id, namespace=namespace, statuses=[APPROVED])}
    held = {f.id: f for f in store.get_facts(tenant_id, referenced)} if referenced else {}
    dangling = sorted(i for i in referenced if i not in held or held[i].status != APPROVED)
    orphans = sorted(i for i, f in approved.items() if indexed_docs and f.source_document not in indexed_docs)
    unpublished = sorted(i for i, f in approved.items()
                         if i not in referenced and i not in orphans and (not indexed_docs or f.source_document
                                                                           in indexed_docs))
    universe = set(approved) | referenced
    drift_pct = round(100.0 * (len(dangling) + len(orphans) + len(unpublished)) / len(universe), 2) if universe else 0.0
    removed = 0
    if remove_orphans and orphans:
        store.append_audit(tenant_id, [AuditEntry(tenant_id, "orphan_removed", actor, i, detail={
            "fact": approved[i].to_dict(), "reason": "source document no longer in any index payload"})
            for i in orphans])
        removed = store.delete_facts(tenant_id, orphans)
    return {
        "tenant_id": tenant_id, "namespace": namespace, "approved_facts": len(approved),
        "referenced_facts": len(referenced), "indexed_documents": len(indexed_docs),
        "dangling": dangling, "orphans": orphans, "unpublished": unpublished,
        "drift_pct": drift_pct, "orphans_removed": removed,
    }
