"""The one contract every fact store implements, and the factory that opens the one the settings name.

Every method takes the tenant explicitly and touches nothing of another tenant: the stores put
``tenant_id`` in every WHERE clause / MATCH, never rely on ids alone. Review, conflict detection,
gate, publication and drift are written once against this contract (see review.py, pipeline.py).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from knowledge_plane.facts.model import AuditEntry, EntityType, Fact, Relation, SourceState
from knowledge_plane.settings import Settings

# Fields a review may change on a fact; everything else is provenance and stays as extracted.
MUTABLE_FIELDS = frozenset({
    "status", "valid_until", "approved_by", "approved_at", "reason", "merged_into", "confidence",
    "source_version", "source_chunk_id", "source_hash", "source_path", "updated_at",
})


class UnknownFact(LookupError):
    """A fact id (or id prefix) that names no fact of the tenant, or more than one."""


class FactStore(ABC):
    """Facts, their relations, the audit log, extraction state and entity types of every tenant."""

    backend: str = "abstract"

    # -- facts ------------------------------------------------------------------------------
    @abstractmethod
    def upsert_facts(self, tenant_id: str, facts: Sequence[Fact]) -> list[str]:
        """Insert facts not yet held; refresh the provenance of held ones (never their status).

        Returns the ids that were new.
        """

    @abstractmethod
    def get_facts(self, tenant_id: str, ids: Iterable[str]) -> list[Fact]:
        """The tenant's facts with these ids (unknown ids are simply absent)."""

    @abstractmethod
    def match_ids(self, tenant_id: str, prefix: str, limit: int = 2) -> list[str]:
        """Ids of the tenant's facts starting with a prefix (a CLI user types the first characters)."""

    @abstractmethod
    def list_facts(self, tenant_id: str, *, namespace: str | None = None, statuses: Sequence[str] | None = None,
                   subject_key: str | None = None, predicate_key: str | None = None,
                   source_document: str | None = None, fact_type: str | None = None,
                   limit: int | None = None) -> list[Fact]:
        """Facts matching every given filter, ordered by subject, predicate, valid_from, id."""

    @abstractmethod
    def facts_for_keys(self, tenant_id: str, keys: Iterable[tuple[str, str]]) -> list[Fact]:
        """Every fact (any status) of these (subject_key, predicate_key) pairs: conflict detection's input."""

    @abstractmethod
    def facts_at(self, tenant_id: str, subject_key: str, predicate_key: str, on: dt.date,
                 statuses: Sequence[str]) -> list[Fact]:
        """Facts of one key valid on a day (inclusive bounds, open ends), ordered by valid_from."""

    @abstractmethod
    def update_facts(self, tenant_id: str, changes: Mapping[str, Mapping[str, Any]]) -> None:
        """Apply {fact id: {field: value}} for fields in MUTABLE_FIELDS; sets updated_at."""

    @abstractmethod
    def delete_facts(self, tenant_id: str, ids: Iterable[str]) -> int:
        """Delete facts and their relations; returns how many facts went."""

    @abstractmethod
    def count_facts(self, tenant_id: str, by: str, *, namespace: str | None = None) -> dict[str, int]:
        """Counts grouped by one field (status, fact_type, extraction_method, namespace)."""

    # -- relations --------------------------------------------------------------------------
    @abstractmethod
    def add_relations(self, tenant_id: str, relations: Sequence[Relation]) -> list[Relation]:
        """Store relations not held yet (by kind, from, to); returns those that were new."""

    @abstractmethod
    def list_relations(self, tenant_id: str, *, fact_ids: Iterable[str] | None = None,
                       kinds: Sequence[str] | None = None, status: str | None = None) -> list[Relation]:
        """Relations touching any of the facts (either end), of these kinds, in this status."""

    @abstractmethod
    def update_relations(self, tenant_id: str, relations: Sequence[Relation]) -> None:
        """Persist status / resolution fields of held relations."""

    # -- audit ------------------------------------------------------------------------------
    @abstractmethod
    def append_audit(self, tenant_id: str, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log (never updated, never deleted)."""

    @abstractmethod
    def audit_log(self, tenant_id: str, fact_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """The tenant's audit entries, oldest first, optionally for one fact."""

    # -- extraction state -------------------------------------------------------------------
    @abstractmethod
    def source_states(self, tenant_id: str, namespace: str) -> dict[str, SourceState]:
        """What the extractor last saw of each document of a namespace, by doc_id."""

    @abstractmethod
    def set_source_states(self, tenant_id: str, namespace: str, states: Sequence[SourceState]) -> None:
        """Record (insert or replace) the extraction state of documents."""

    @abstractmethod
    def delete_source_states(self, tenant_id: str, namespace: str, doc_ids: Iterable[str]) -> None:
        """Forget documents that left the namespace."""

    # -- entity types -----------------------------------------------------------------------
    @abstractmethod
    def register_entity_types(self, tenant_id: str, initial: Mapping[str, str]) -> dict[str, str]:
        """Register types not seen before with their initial status; return every given type's status."""

    @abstractmethod
    def entity_types(self, tenant_id: str, status: str | None = None) -> list[EntityType]:
        """The tenant's entity types, by name."""

    @abstractmethod
    def set_entity_type_status(self, tenant_id: str, type_name: str, status: str, by: str) -> EntityType | None:
        """Approve or reject a type; None when the tenant has no such type."""

    @abstractmethod
    def merge_entity_type(self, tenant_id: str, type_name: str, into: str) -> int:
        """Give ``type_name``'s facts (and graph entities) the type ``into`` and forget ``type_name``;
        returns how many facts changed type. Both types must be registered (the caller checks)."""

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - stores without resources have nothing to release
        """Release connections."""

    def __enter__(self) -> FactStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_fact_store(settings: Settings) -> FactStore:
    """The store the ``facts`` section names: ``sql`` (the registry database) or ``neo4j`` (NEO4J_URI…)."""
    facts = settings.facts
    if facts.store == "neo4j":
        from knowledge_plane.facts.neo4j_store import Neo4jFactStore

        if not facts.neo4j_uri:
            raise ValueError("KNOWLEDGE_FACT_STORE=neo4j needs NEO4J_URI (e.g. bolt://localhost:7687)")
        password = facts.neo4j_password.get_secret_value() if facts.neo4j_password else ""
        auth = (facts.neo4j_user, password) if facts.neo4j_user else None
        return Neo4jFactStore(facts.neo4j_uri, auth=auth, database=facts.neo4j_database,
                              retry=settings.retries.policy())
    from knowledge_plane.facts.sql_store import SqlFactStore

    return SqlFactStore(settings.registry.url.get_secret_value())
