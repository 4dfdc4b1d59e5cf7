"""The graph fact store over Bolt with the official ``neo4j`` driver: Neo4j, or FalkorDB's Bolt server.

Facts are ``(:Fact)`` nodes linked ``-[:ABOUT]->(:Entity)``; conflicts are relationships named
after their kind (``CONTRADICTS``, ``OVERRIDES``, ``DUPLICATES``, ``OUTDATED``) between two facts;
the audit log, extraction state and entity types are nodes too. Every statement filters
``tenant_id``. Dates are ISO strings, which compare in calendar order on both engines.

The Cypher sticks to what Neo4j 5 and FalkorDB both accept. Only the schema differs: Neo4j gets
named, composite, ``IF NOT EXISTS`` indexes and a uniqueness constraint (``_NEO4J_SCHEMA``);
FalkorDB, which rejects those forms, gets plain single-property range indexes, created only when
``db.indexes()`` does not list them yet (``_PORTABLE_INDEXES``).

Each statement is retried on transient failures (knowledge_plane.storage.retries: server
unavailable, session expired, transient errors), with the driver's own transaction retries turned
off so the attempts do not multiply. A retried statement may have been committed the first time,
so every write is idempotent: nodes and relationships are MERGEd on their ids, SETs are absolute.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from neo4j import GraphDatabase, RoutingControl
from neo4j.exceptions import Neo4jError

from knowledge_plane.facts.model import (
    RELATION_KINDS,
    TYPE_STATUSES,
    AuditEntry,
    EntityType,
    Fact,
    Relation,
    SourceState,
)
from knowledge_plane.facts.store import MUTABLE_FIELDS, FactStore
from knowledge_plane.storage.retries import RetryPolicy, neo4j_transient

_NEO4J_SCHEMA = (
    "CREATE INDEX fact_tenant IF NOT EXISTS FOR (f:Fact) ON (f.tenant_id)",
    "CREATE INDEX fact_tenant_key IF NOT EXISTS FOR (f:Fact) ON (f.tenant_id, f.subject_key, f.predicate_key)",
    "CREATE INDEX fact_status IF NOT EXISTS FOR (f:Fact) ON (f.status)",
    "CREATE INDEX fact_tenant_ns_status IF NOT EXISTS FOR (f:Fact) ON (f.tenant_id, f.namespace, f.status)",
    "CREATE CONSTRAINT fact_id IF NOT EXISTS FOR (f:Fact) REQUIRE f.id IS UNIQUE",
    "CREATE INDEX entity_tenant_key IF NOT EXISTS FOR (e:Entity) ON (e.tenant_id, e.key)",
    "CREATE CONSTRAINT entity_type_uid IF NOT EXISTS FOR (t:EntityType) REQUIRE t.uid IS UNIQUE",
    "CREATE INDEX fact_audit_tenant IF NOT EXISTS FOR (a:FactAudit) ON (a.tenant_id, a.fact_id)",
    "CREATE INDEX fact_source_tenant IF NOT EXISTS FOR (s:FactSource) ON (s.tenant_id, s.namespace)",
)
_PORTABLE_INDEXES = {
    "Fact": ("tenant_id", "id", "subject_key", "predicate_key", "status", "namespace", "source_document"),
    "Entity": ("tenant_id", "key"),
    "EntityType": ("uid", "tenant_id"),
    "FactAudit": ("tenant_id", "fact_id"),
    "FactSource": ("tenant_id", "namespace"),
}
_GROUPABLE = {"status", "fact_type", "extraction_method", "namespace", "entity_type", "source_document"}
_BATCH = 1000  # rows per UNWIND on Neo4j
# FalkorDB 4.16 renders parameters into a fixed stack buffer of about 4 KB and crashes beyond it
# (measured: 4,062 bytes pass, 4,077 kill the server); statements are split to stay well under.
_FALKORDB_PARAM_BUDGET = 3_000
_FALKORDB_PARAM_LIMIT = 3_900


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _props(fact: Fact) -> dict[str, Any]:
    data = fact.to_dict()
    data.pop("source", None)
    now = _now().isoformat()
    data["created_at"] = data["created_at"] or now
    data["updated_at"] = data["updated_at"] or now
    return {k: v for k, v in data.items() if v is not None}  # a graph property cannot hold null


def _store_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def _quote_for_falkordb(value: Any) -> Any:
    """FalkorDB's Bolt server splices string parameters into a ``CYPHER name='…'`` prefix without
    escaping them: a quote breaks the query and a backslash starts an escape. Escaping both here
    makes every string arrive as sent (checked by the contract tests' round trip of such strings)."""
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("'", "\\'")
    if isinstance(value, dict):
        return {k: _quote_for_falkordb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_quote_for_falkordb(v) for v in value]
    return value


def _size(value: Any) -> int:
    """Bytes a parameter takes once rendered (JSON is a close, slightly larger, stand-in for Cypher)."""
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))


def _fact(props: Mapping[str, Any]) -> Fact:
    data = dict(props)
    for key in ("source_version", "source_path", "source_hash"):
        data.setdefault(key, "")
    data.setdefault("value", None)  # a graph stores no null: absent properties are None
    data.setdefault("unit", None)
    return Fact.from_dict(data)


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _relation(kind: str, from_id: str, to_id: str, props: Mapping[str, Any]) -> Relation:
    return Relation(props["tenant_id"], kind, from_id, to_id, props.get("severity", "low"), props.get("value_diff_pct"),
                    props.get("status", "open"), _time(props.get("detected_at")) or _now(),
                    _time(props.get("resolved_at")), props.get("resolved_by"), props.get("resolution"))


class Neo4jFactStore(FactStore):
    """Facts as a graph behind a Bolt URI (``bolt://``, ``neo4j://``, ``neo4j+s://``…)."""

    backend = "neo4j"

    def __init__(self, uri: str, auth: tuple[str, str] | None = None, database: str | None = None,
                 connection_acquisition_timeout: float = 10.0, retry: RetryPolicy | None = None):
        # A short acquisition timeout matters on FalkorDB: its Bolt server drops the first handshake
        # after a client said GOODBYE, and the statement is only retried once that attempt times out.
        self.uri = uri
        self.database = database
        self.retry = retry or RetryPolicy()
        self.driver = GraphDatabase.driver(uri, auth=auth,
                                           connection_acquisition_timeout=connection_acquisition_timeout,
                                           max_transaction_retry_time=0)
        self.flavour = "unknown"
        self.flavour = self._detect_flavour()
        self._ensure_schema()

    def close(self) -> None:
        self.driver.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _run(self, query: str, read: bool = False, **params: Any) -> list[dict[str, Any]]:
        # FalkorDB cannot take a top-level null parameter; queries only name the ones they are given
        params = {k: v for k, v in params.items() if v is not None}
        if self.flavour == "falkordb":
            params = _quote_for_falkordb(params)
            if _size(params) > _FALKORDB_PARAM_LIMIT:
                raise ValueError(f"{_size(params)} bytes of parameters: more than FalkorDB's Bolt server accepts "
                                 f"(about {_FALKORDB_PARAM_LIMIT}); use Neo4j for values this large")
        records, _, _ = self.retry.call(
            f"neo4j {'read' if read else 'write'} {query[:60]!r}", neo4j_transient, self.driver.execute_query,
            query, params, database_=self.database, routing_=RoutingControl.READ if read else RoutingControl.WRITE)
        return [r.data() for r in records]

    def _batched(self, query: str, name: str, items: Sequence[Any], read: bool = False,
                 **params: Any) -> list[dict[str, Any]]:
        """Run a statement over a list parameter in chunks (a thousand rows, or FalkorDB's byte budget)."""
        out: list[dict[str, Any]] = []
        for chunk in self._chunks(list(items), params):
            out.extend(self._run(query, read=read, **params, **{name: chunk}))
        return out

    def _chunks(self, items: list[Any], params: Mapping[str, Any]) -> Iterable[list[Any]]:
        if self.flavour != "falkordb":
            for start in range(0, len(items), _BATCH):
                yield items[start:start + _BATCH]
            return
        base = _size({k: v for k, v in params.items() if v is not None})
        chunk: list[Any] = []
        size = base
        for item in items:
            item_size = _size(item) + 2
            if chunk and size + item_size > _FALKORDB_PARAM_BUDGET:
                yield chunk
                chunk, size = [], base
            chunk.append(item)
            size += item_size
        if chunk:
            yield chunk

    def _detect_flavour(self) -> str:
        try:
            self._run("CALL dbms.components() YIELD name RETURN name", read=True)
            return "neo4j"
        except Neo4jError:  # FalkorDB reports a Neo4j agent string but has no dbms.components()
            return "falkordb"

    def _ensure_schema(self) -> None:
        if self.flavour == "neo4j":
            for statement in _NEO4J_SCHEMA:
                self._run(statement)
            return
        present: set[tuple[str, str]] = set()
        for row in self._run("CALL db.indexes() YIELD label, properties RETURN label, properties", read=True):
            present.update((row["label"], p) for p in row["properties"])
        for label, properties in _PORTABLE_INDEXES.items():
            missing = [p for p in properties if (label, p) not in present]
            if missing:
                fields = ", ".join(f"n.{p}" for p in missing)
                self._run(f"CREATE INDEX FOR (n:{label}) ON ({fields})")

    # -- facts ------------------------------------------------------------------------------
    def upsert_facts(self, tenant_id: str, items: Sequence[Fact]) -> list[str]:
        unique = {f.id: f for f in items if f.tenant_id == tenant_id}
        held = {r["id"] for r in self._batched(
            "MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id IN $ids RETURN f.id AS id",
            "ids", list(unique), read=True, tenant=tenant_id)}
        new = [f for i, f in unique.items() if i not in held]
        # MERGE on the fact id, not CREATE: a statement retried after it committed writes nothing twice.
        self._batched(
            "UNWIND $rows AS row "
            "MERGE (f:Fact {tenant_id: $tenant, id: row.props.id}) ON CREATE SET f = row.props "
            "WITH f, row "
            "MERGE (e:Entity {tenant_id: $tenant, key: row.props.subject_key}) "
            "ON CREATE SET e.name = row.props.subject "
            "SET e.type = coalesce(row.entity_type, e.type) "
            "MERGE (f)-[:ABOUT]->(e)", "rows", [{"props": _props(f), "entity_type": f.entity_type} for f in new],
            tenant=tenant_id)
        refresh = [{"id": f.id, "props": {"source_version": f.source_version, "source_chunk_id": f.source_chunk_id,
                                          "source_hash": f.source_hash, "source_path": f.source_path,
                                          "updated_at": _now().isoformat()}}
                   for i, f in unique.items() if i in held]
        self._batched("UNWIND $rows AS row MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id = row.id "
                      "SET f += row.props", "rows", refresh, tenant=tenant_id)
        return [f.id for f in new]

    def get_facts(self, tenant_id: str, ids: Iterable[str]) -> list[Fact]:
        wanted = list(dict.fromkeys(ids))
        rows = self._batched("MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id IN $ids RETURN properties(f) AS f",
                             "ids", wanted, read=True, tenant=tenant_id)
        order = {i: n for n, i in enumerate(wanted)}
        return sorted((_fact(r["f"]) for r in rows), key=lambda f: order[f.id])

    def match_ids(self, tenant_id: str, prefix: str, limit: int = 2) -> list[str]:
        rows = self._run("MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id STARTS WITH $prefix "
                         "RETURN f.id AS id ORDER BY id LIMIT $limit", read=True, tenant=tenant_id, prefix=prefix,
                         limit=limit)
        return [r["id"] for r in rows]

    def list_facts(self, tenant_id: str, *, namespace: str | None = None, statuses: Sequence[str] | None = None,
                   subject_key: str | None = None, predicate_key: str | None = None,
                   source_document: str | None = None, fact_type: str | None = None,
                   limit: int | None = None) -> list[Fact]:
        where = ["f.tenant_id = $tenant"]
        params: dict[str, Any] = {"tenant": tenant_id}
        for name, value in (("namespace", namespace), ("subject_key", subject_key), ("predicate_key", predicate_key),
                            ("source_document", source_document), ("fact_type", fact_type)):
            if value is not None:
                where.append(f"f.{name} = ${name}")
                params[name] = value
        if statuses:
            where.append("f.status IN $statuses")
            params["statuses"] = list(statuses)
        query = (f"MATCH (f:Fact) WHERE {' AND '.join(where)} "
                 "WITH f ORDER BY f.subject_key, f.predicate_key, coalesce(f.valid_from, ''), f.id ")
        if limit is not None:
            query += "LIMIT $limit "
            params["limit"] = limit
        return [_fact(r["f"]) for r in self._run(query + "RETURN properties(f) AS f", read=True, **params)]

    def facts_for_keys(self, tenant_id: str, keys: Iterable[tuple[str, str]]) -> list[Fact]:
        pairs = [{"s": s, "p": p} for s, p in dict.fromkeys(keys)]
        rows = self._batched("UNWIND $keys AS k MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.subject_key = k.s "
                             "AND f.predicate_key = k.p RETURN properties(f) AS f", "keys", pairs, read=True,
                             tenant=tenant_id)
        return [_fact(r["f"]) for r in rows]

    def facts_at(self, tenant_id: str, subject_key: str, predicate_key: str, on: dt.date,
                 statuses: Sequence[str]) -> list[Fact]:
        rows = self._run(
            "MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.subject_key = $subject AND f.predicate_key = $predicate "
            "AND f.status IN $statuses AND (f.valid_from IS NULL OR f.valid_from <= $on) "
            "AND (f.valid_until IS NULL OR f.valid_until >= $on) "
            "WITH f ORDER BY coalesce(f.valid_from, ''), f.id RETURN properties(f) AS f",
            read=True, tenant=tenant_id, subject=subject_key, predicate=predicate_key, statuses=list(statuses),
            on=on.isoformat())
        return [_fact(r["f"]) for r in rows]

    def update_facts(self, tenant_id: str, changes: Mapping[str, Mapping[str, Any]]) -> None:
        now = _now().isoformat()
        rows = []
        for fact_id, values in changes.items():
            unknown = set(values) - MUTABLE_FIELDS
            if unknown:
                raise ValueError(f"fields {sorted(unknown)} of a fact cannot be changed")
            props = {"updated_at": now, **{k: _store_value(v) for k, v in values.items()}}
            rows.append({"id": fact_id, "props": props})
        self._batched("UNWIND $rows AS row MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id = row.id "
                      "SET f += row.props", "rows", rows, tenant=tenant_id)

    def delete_facts(self, tenant_id: str, ids: Iterable[str]) -> int:
        rows = self._batched("MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id IN $ids "
                             "WITH collect(f) AS doomed, count(f) AS n FOREACH (x IN doomed | DETACH DELETE x) "
                             "RETURN n", "ids", list(dict.fromkeys(ids)), tenant=tenant_id)
        return sum(int(r["n"]) for r in rows)

    def count_facts(self, tenant_id: str, by: str, *, namespace: str | None = None) -> dict[str, int]:
        if by not in _GROUPABLE:
            raise ValueError(f"cannot count facts by {by!r}: choose one of {', '.join(sorted(_GROUPABLE))}")
        where = "f.tenant_id = $tenant" + (" AND f.namespace = $namespace" if namespace is not None else "")
        rows = self._run(f"MATCH (f:Fact) WHERE {where} RETURN f.{by} AS k, count(*) AS n", read=True,
                         tenant=tenant_id, namespace=namespace)
        return {str(r["k"]): int(r["n"]) for r in rows}

    # -- relations --------------------------------------------------------------------------
    def add_relations(self, tenant_id: str, items: Sequence[Relation]) -> list[Relation]:
        unique = {r.id: r for r in items if r.tenant_id == tenant_id}
        new: list[Relation] = []
        for kind in RELATION_KINDS:  # a relationship type cannot be a parameter: one statement per kind
            rows = [{"from_id": r.from_id, "to_id": r.to_id, "props": self._relation_props(r)}
                    for r in unique.values() if r.kind == kind]
            if not rows:
                continue
            created = {row["id"] for row in self._batched(
                "UNWIND $rows AS row "
                "MATCH (a:Fact) WHERE a.tenant_id = $tenant AND a.id = row.from_id "
                "MATCH (b:Fact) WHERE b.tenant_id = $tenant AND b.id = row.to_id "
                f"OPTIONAL MATCH (a)-[old:{kind}]->(b) "
                "WITH a, b, row, old WHERE old IS NULL "
                f"CREATE (a)-[r:{kind}]->(b) SET r = row.props "
                "RETURN row.props.id AS id", "rows", rows, tenant=tenant_id)}
            new.extend(r for r in unique.values() if r.id in created)
        return new

    @staticmethod
    def _relation_props(r: Relation) -> dict[str, Any]:
        data = r.to_dict()
        for key in ("kind", "from_id", "to_id"):
            data.pop(key)
        return {k: v for k, v in data.items() if v is not None}

    def list_relations(self, tenant_id: str, *, fact_ids: Iterable[str] | None = None,
                       kinds: Sequence[str] | None = None, status: str | None = None) -> list[Relation]:
        params: dict[str, Any] = {"tenant": tenant_id, "kinds": list(kinds or RELATION_KINDS), "status": status}
        status_filter = " AND r.status = $status" if status else ""
        ret = "RETURN type(r) AS kind, startNode(r).id AS from_id, endNode(r).id AS to_id, properties(r) AS props"
        if fact_ids is None:
            rows = self._run("MATCH (a:Fact)-[r]->(b:Fact) WHERE a.tenant_id = $tenant AND b.tenant_id = $tenant "
                             f"AND type(r) IN $kinds{status_filter} {ret}", read=True, **params)
        else:
            rows = self._batched("MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.id IN $ids "
                                 "MATCH (f)-[r]-(o:Fact) WHERE o.tenant_id = $tenant "
                                 f"AND type(r) IN $kinds{status_filter} {ret}", "ids", list(dict.fromkeys(fact_ids)),
                                 read=True, **params)
        found = {}
        for row in rows:
            relation = _relation(row["kind"], row["from_id"], row["to_id"], row["props"])
            found[relation.id] = relation
        return sorted(found.values(), key=lambda r: (r.detected_at, r.id))

    def update_relations(self, tenant_id: str, items: Sequence[Relation]) -> None:
        for kind in RELATION_KINDS:
            rows = [{"from_id": r.from_id, "to_id": r.to_id,
                     "props": {"status": r.status, "severity": r.severity,
                               "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
                               "resolved_by": r.resolved_by, "resolution": r.resolution}}
                    for r in items if r.kind == kind and r.tenant_id == tenant_id]
            self._batched("UNWIND $rows AS row "
                          "MATCH (a:Fact) WHERE a.tenant_id = $tenant AND a.id = row.from_id "
                          f"MATCH (a)-[r:{kind}]->(b:Fact) WHERE b.tenant_id = $tenant AND b.id = row.to_id "
                          "SET r += row.props", "rows", rows, tenant=tenant_id)

    # -- audit ------------------------------------------------------------------------------
    def append_audit(self, tenant_id: str, entries: Sequence[AuditEntry]) -> None:
        base = time.time_ns()
        rows = [{k: v for k, v in {
            "tenant_id": tenant_id, "seq": base + n, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
            "fact_id": e.fact_id, "relation_id": e.relation_id,
            "detail": json.dumps(e.detail, ensure_ascii=False, default=str)}.items() if v is not None}
            for n, e in enumerate(entries) if e.tenant_id == tenant_id]
        # seq is fixed before the first attempt, so a retried statement MERGEs the same entries.
        self._batched("UNWIND $rows AS row MERGE (x:FactAudit {tenant_id: row.tenant_id, seq: row.seq}) "
                      "SET x = row", "rows", rows)

    def audit_log(self, tenant_id: str, fact_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        where = "x.tenant_id = $tenant" + (" AND x.fact_id = $fact" if fact_id is not None else "")
        query = f"MATCH (x:FactAudit) WHERE {where} WITH x ORDER BY x.seq "
        if limit is not None:
            query += "LIMIT $limit "
        rows = self._run(query + "RETURN properties(x) AS x", read=True, tenant=tenant_id, fact=fact_id, limit=limit)
        return [AuditEntry(r["x"]["tenant_id"], r["x"]["action"], r["x"]["actor"], r["x"].get("fact_id"),
                           r["x"].get("relation_id"), json.loads(r["x"]["detail"]), _time(r["x"]["at"]) or _now())
                for r in rows]

    # -- extraction state -------------------------------------------------------------------
    def source_states(self, tenant_id: str, namespace: str) -> dict[str, SourceState]:
        rows = self._run("MATCH (s:FactSource) WHERE s.tenant_id = $tenant AND s.namespace = $namespace "
                         "RETURN properties(s) AS s", read=True, tenant=tenant_id, namespace=namespace)
        out = {}
        for row in rows:
            s = row["s"]
            out[s["doc_id"]] = SourceState(s["doc_id"], s["content_hash"], s["extractor_version"],
                                           s.get("llm_content_hash"), s.get("llm_model"), int(s.get("facts", 0)),
                                           _time(s.get("extracted_at")) or _now())
        return out

    def set_source_states(self, tenant_id: str, namespace: str, states: Sequence[SourceState]) -> None:
        rows = [{"doc_id": s.doc_id, "props": {k: v for k, v in {
            "content_hash": s.content_hash, "extractor_version": s.extractor_version,
            "llm_content_hash": s.llm_content_hash, "llm_model": s.llm_model, "facts": s.facts,
            "extracted_at": s.extracted_at.isoformat()}.items() if v is not None}} for s in states]
        self._batched("UNWIND $rows AS row "
                      "MERGE (s:FactSource {tenant_id: $tenant, namespace: $namespace, doc_id: row.doc_id}) "
                      "SET s.llm_content_hash = null, s.llm_model = null SET s += row.props",
                      "rows", rows, tenant=tenant_id, namespace=namespace)

    def delete_source_states(self, tenant_id: str, namespace: str, doc_ids: Iterable[str]) -> None:
        self._batched("MATCH (s:FactSource) WHERE s.tenant_id = $tenant AND s.namespace = $namespace "
                      "AND s.doc_id IN $ids DELETE s", "ids", list(doc_ids), tenant=tenant_id, namespace=namespace)

    # -- entity types -----------------------------------------------------------------------
    def register_entity_types(self, tenant_id: str, initial: Mapping[str, str]) -> dict[str, str]:
        if not initial:
            return {}
        rows = [{"uid": f"{tenant_id}\x1f{name}", "name": name, "status": status} for name, status in initial.items()]
        found = self._batched("UNWIND $rows AS row "
                              "MERGE (t:EntityType {uid: row.uid, tenant_id: $tenant, type_name: row.name}) "
                              "ON CREATE SET t.status = row.status, t.first_seen_at = $now "
                              "RETURN t.type_name AS name, t.status AS status",
                              "rows", rows, tenant=tenant_id, now=_now().isoformat())
        return {r["name"]: r["status"] for r in found}

    def entity_types(self, tenant_id: str, status: str | None = None) -> list[EntityType]:
        where = "t.tenant_id = $tenant" + (" AND t.status = $status" if status else "")
        rows = self._run(f"MATCH (t:EntityType) WHERE {where} WITH t ORDER BY t.type_name RETURN properties(t) AS t",
                         read=True, tenant=tenant_id, status=status)
        return [EntityType(t["tenant_id"], t["type_name"], t["status"], _time(t.get("first_seen_at")) or _now(),
                           t.get("decided_by"), _time(t.get("decided_at"))) for t in (r["t"] for r in rows)]

    def merge_entity_type(self, tenant_id: str, type_name: str, into: str) -> int:
        # the subjects' Entity nodes carry the type too: their ABOUT edges stay, their type moves
        self._run("MATCH (e:Entity) WHERE e.tenant_id = $tenant AND e.type = $name SET e.type = $into",
                  tenant=tenant_id, name=type_name, into=into)
        rows = self._run("MATCH (f:Fact) WHERE f.tenant_id = $tenant AND f.entity_type = $name "
                         "SET f.entity_type = $into, f.updated_at = $now RETURN count(f) AS n",
                         tenant=tenant_id, name=type_name, into=into, now=_now().isoformat())
        self._run("MATCH (t:EntityType) WHERE t.tenant_id = $tenant AND t.type_name = $name DELETE t",
                  tenant=tenant_id, name=type_name)
        return int(rows[0]["n"]) if rows else 0

    def set_entity_type_status(self, tenant_id: str, type_name: str, status: str, by: str) -> EntityType | None:
        if status not in TYPE_STATUSES:
            raise ValueError(f"entity type status must be one of {', '.join(TYPE_STATUSES)}, got {status!r}")
        rows = self._run("MATCH (t:EntityType) WHERE t.tenant_id = $tenant AND t.type_name = $name "
                         "SET t.status = $status, t.decided_by = $by, t.decided_at = $now RETURN t.type_name AS name",
                         tenant=tenant_id, name=type_name, status=status, by=by, now=_now().isoformat())
        if not rows:
            return None
        return next(t for t in self.entity_types(tenant_id) if t.type_name == type_name)

