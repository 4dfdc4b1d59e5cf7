"""What the console does, once, for its pages and its REST API alike.

Every decision on facts calls knowledge_plane/facts/review.py (the same functions as ``knowledge facts …``),
the rollback calls knowledge_plane/build/stages.py's (the same as ``knowledge rollback``), packs and caller apps go
through knowledge_plane/storage/packs.py and knowledge_plane/storage/registry.py. The console adds who did it: the
signed-in person's
actor string is passed as ``by`` and administrative actions are appended to the tenant's audit log.
Everything is scoped to the deployment's tenant; an id of another tenant is simply unknown here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from knowledge_plane.build import stages as build
from knowledge_plane.build.records import ChunksRecord, ParsedRecord
from knowledge_plane.build.uploads import APP_NAME_RE
from knowledge_plane.console.auth import Principal
from knowledge_plane.console.queue import QueueFilter, QueuePage, page
from knowledge_plane.facts import review
from knowledge_plane.facts.model import OPEN, AuditEntry, Fact, Relation
from knowledge_plane.facts.queries import facts_at, timeline
from knowledge_plane.facts.store import FactStore, UnknownFact, open_fact_store
from knowledge_plane.settings import Settings
from knowledge_plane.storage.registry import Registry, caller_apps, set_caller_app


class NotFound(LookupError):
    """Nothing of this tenant under that id or name."""


@dataclass
class Passage:
    """The chunk a fact was read from, as the build chunked it."""

    chunk_id: str
    doc_id: str
    doc_version: str
    title: str
    source_path: str
    location: str
    text: str


class Console:
    """The console's operations on one tenant's registry, fact store and build records."""

    def __init__(self, settings: Settings, store: FactStore | None = None):
        self.settings = settings
        self.tenant = settings.tenant_id
        self.store = store or open_fact_store(settings)
        self.ctx = build.BuildContext(settings, run_id="console")
        self._chunks: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {}

    def close(self) -> None:
        self.store.close()

    @property
    def registry(self) -> Registry:
        return self.ctx.registry

    # -- facts ------------------------------------------------------------------------------
    def queue(self, wanted: QueueFilter, cursor: str | None = None) -> QueuePage:
        return page(self.store, self.tenant, wanted, cursor)

    def fact(self, fact_id: str) -> Fact:
        found = self.store.get_facts(self.tenant, [fact_id])
        if not found:
            raise NotFound(f"no fact {fact_id!r} in tenant {self.tenant!r}")
        return found[0]

    def fact_detail(self, fact_id: str) -> dict[str, Any]:
        fact = self.fact(fact_id)
        relations = self.store.list_relations(self.tenant, fact_ids=[fact_id])
        others = {f.id: f for f in self.store.get_facts(self.tenant, {r.other(fact_id) for r in relations})}
        return {"fact": fact, "relations": [(r, others.get(r.other(fact_id))) for r in relations],
                "audit": self.store.audit_log(self.tenant, fact_id=fact_id), "passage": self.passage(fact)}

    def conflicts(self) -> list[tuple[Relation, Fact | None, Fact | None]]:
        relations = self.store.list_relations(self.tenant, status=OPEN)
        facts = {f.id: f for f in self.store.get_facts(self.tenant, {i for r in relations
                                                                     for i in (r.from_id, r.to_id)})}
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
        relations.sort(key=lambda r: (order.get(r.severity, 9), r.detected_at))
        return [(r, facts.get(r.from_id), facts.get(r.to_id)) for r in relations]

    def conflict(self, relation_id: str) -> dict[str, Any]:
        relations = self.store.list_relations(self.tenant)
        match = next((r for r in relations if r.id == relation_id), None)
        if match is None:
            raise NotFound(f"no conflict {relation_id!r} in tenant {self.tenant!r}")
        sides = []
        for fact_id in (match.from_id, match.to_id):
            fact = self.fact(fact_id)
            sides.append({"fact": fact, "passage": self.passage(fact)})
        audit = self.store.audit_log(self.tenant, fact_id=match.from_id)
        audit += self.store.audit_log(self.tenant, fact_id=match.to_id)
        # entries about the relation itself (detected, resolved) name no fact: the store has no
        # lookup by relation, so they are picked from the tenant's log
        audit += [e for e in self.store.audit_log(self.tenant) if e.relation_id == match.id and e.fact_id is None]
        audit.sort(key=lambda e: e.at)
        return {"relation": match, "sides": sides, "audit": audit}

    def passage(self, fact: Fact) -> Passage | None:
        """The fact's source chunk from the namespace's last chunking record (None if it is gone)."""
        chunks = self._namespace_chunks(fact.namespace)
        chunk = chunks.get(fact.source_chunk_id or "") or next(
            (c for c in chunks.values() if c["doc_id"] == fact.source_document and fact.object in c["text"]), None)
        if chunk is None:
            return None
        return Passage(chunk["chunk_id"], chunk["doc_id"], chunk["doc_version"], chunk["title"],
                       chunk["source_path"], chunk["location"], chunk["text"])

    def _namespace_chunks(self, namespace: str) -> dict[str, dict[str, Any]]:
        run_id = self.ctx.stages.latest_run(ChunksRecord, namespace)
        if run_id is None:
            return {}
        cached = self._chunks.get(namespace)
        if cached is None or cached[0] != run_id:  # re-read only after another run chunked the namespace
            record = self.ctx.stages.read_run(ChunksRecord, namespace, run_id)
            cached = (run_id, {c["chunk_id"]: c for c in record.chunks})
            self._chunks[namespace] = cached
        return cached[1]

    # -- decisions (review.py does the work; ``by`` is always the signed-in person) ----------
    def _ids(self, refs: list[str]) -> list[str]:
        try:
            return review.resolve_ids(self.store, self.tenant, refs)
        except UnknownFact as exc:
            raise NotFound(str(exc)) from exc

    def approve(self, ids: list[str], who: Principal, skip_conflicted: bool = False) -> dict[str, list[str]]:
        return review.approve(self.store, self.tenant, self._ids(ids), who.actor, skip_conflicted=skip_conflicted)

    def reject(self, ids: list[str], reason: str, who: Principal) -> dict[str, list[str]]:
        return review.reject(self.store, self.tenant, self._ids(ids), reason, who.actor)

    def override(self, new_id: str, old_id: str, who: Principal) -> dict[str, Any]:
        new_id, old_id = self._ids([new_id, old_id])
        return review.override(self.store, self.tenant, new_id, old_id, who.actor)

    def merge(self, keep_id: str, duplicate_ids: list[str], who: Principal) -> dict[str, Any]:
        ids = self._ids([keep_id, *duplicate_ids])
        return review.merge(self.store, self.tenant, ids[0], ids[1:], who.actor)

    def resolve(self, fact_id: str, keep_id: str, who: Principal) -> dict[str, Any]:
        fact_id, keep_id = self._ids([fact_id, keep_id])
        return review.resolve(self.store, self.tenant, fact_id, keep_id, who.actor)

    def correct(self, fact_id: str, value: str, reason: str, who: Principal) -> dict[str, Any]:
        (fact_id,) = self._ids([fact_id])
        return review.correct(self.store, self.tenant, fact_id, value, reason, who.actor)

    # -- time -------------------------------------------------------------------------------
    def timeline(self, subject: str, predicate: str, on: str | None = None) -> dict[str, Any]:
        entries = timeline(self.store, self.tenant, subject, predicate, include_rejected=True)
        held = facts_at(self.store, self.tenant, subject, predicate, on) if on else None
        return {"entries": entries, "held": held, "on": on}

    # -- entity types -----------------------------------------------------------------------
    def entity_types(self, status: str | None = None) -> list[dict[str, Any]]:
        counts = self.store.count_facts(self.tenant, "entity_type")
        return [{**t.to_dict(), "facts": counts.get(t.type_name, 0)}
                for t in self.store.entity_types(self.tenant, status)]

    def decide_entity_type(self, type_name: str, approve_it: bool, who: Principal) -> dict[str, Any]:
        return review.decide_entity_type(self.store, self.tenant, type_name, approve_it, who.actor).to_dict()

    def create_entity_type(self, type_name: str, who: Principal) -> dict[str, Any]:
        return review.create_entity_type(self.store, self.tenant, type_name, who.actor).to_dict()

    def merge_entity_type(self, type_name: str, into: str, who: Principal) -> dict[str, Any]:
        return review.merge_entity_type(self.store, self.tenant, type_name, into, who.actor)

    # -- administration ---------------------------------------------------------------------
    def _audit(self, action: str, who: Principal, **detail: Any) -> None:
        self.store.append_audit(self.tenant, [AuditEntry(self.tenant, action, who.actor, detail=detail)])

    def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        """The newest entries first."""
        return list(reversed(self.store.audit_log(self.tenant)[-limit:]))

    def packs(self) -> list[dict[str, Any]]:
        return self.ctx.packs.list()

    def create_pack(self, pack_id: str, name: str | None, who: Principal) -> None:
        self.ctx.packs.create(pack_id, name or None)
        self._audit("pack_created", who, pack_id=pack_id, name=name or pack_id)

    def set_pack_active(self, pack_id: str, active: bool, who: Principal) -> None:
        try:
            self.ctx.packs.set_active(pack_id, active)
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        self._audit("pack_enabled" if active else "pack_disabled", who, pack_id=pack_id)

    def caller_apps(self) -> list[dict[str, Any]]:
        with self.registry.engine.connect() as db:
            rows = db.execute(sa.select(caller_apps).order_by(caller_apps.c.name))
            return [{"name": r.name, "active": bool(r.active), "created_at": r.created_at} for r in rows]

    def set_caller_app(self, name: str, active: bool, who: Principal, create: bool = False) -> None:
        if not APP_NAME_RE.match(name):
            raise ValueError(f"malformed caller app name {name!r}: expected ^[a-z0-9_-]{{2,64}}$")
        known = {a["name"] for a in self.caller_apps()}
        if create and name in known:
            raise ValueError(f"caller app {name!r} already exists")
        if not create and name not in known:
            raise NotFound(f"unknown caller app {name!r}")
        set_caller_app(self.registry, name, active)
        self._audit("caller_app_created" if create else ("caller_app_activated" if active else
                                                        "caller_app_deactivated"), who, caller_app=name)

    def indexes(self) -> list[dict[str, Any]]:
        return self.registry.status([])

    def rollback(self, namespace: str, who: Principal) -> dict[str, Any]:
        if namespace not in self.registry.namespaces():
            raise NotFound(f"no index versions for namespace {namespace!r}")
        try:
            result = build.rollback(self.ctx, namespace)
        except LookupError as exc:  # no @rollback version to go back to
            raise NotFound(str(exc)) from exc
        self._audit("index_rollback", who, **result)
        return result

    def quarantined(self) -> list[dict[str, Any]]:
        """Per namespace, the documents its last parse held back, with reasons and when."""
        out = []
        for namespace in self.registry.namespaces():
            run_id = self.ctx.stages.latest_run(ParsedRecord, namespace)
            if run_id is None:
                continue
            record = self.ctx.stages.read_run(ParsedRecord, namespace, run_id)
            written = self.ctx.stages.path(ParsedRecord, namespace, run_id).stat().st_mtime
            at = dt.datetime.fromtimestamp(written, dt.UTC)
            out.append({"namespace": namespace, "run_id": record.run_id, "at": at.isoformat(timespec="seconds"),
                        "documents": len(record.documents), "quarantined": record.quarantined})
        return out
