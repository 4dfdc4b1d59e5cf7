"""The initial schema, as `metadata.create_all` made it before migrations.

Registry (index_versions, aliases, alias_events, caller_apps seeded with the two apps every
deployment has, query_log made append-only by triggers), packs, and the SQL fact store (facts,
fact_relations, fact_audit, fact_sources, entity_types).

When knowledge_plane.storage.schema adopts a database made before migrations, it sets ``adopt_existing``: the tables
that database already has are kept as they are and only the missing ones are created (the old
code created each module's tables on first use, so an old database may hold only some of them).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEEDED_CALLER_APPS = ("aurora_nexus_ui", "unknown")
_TEXT_ID = sa.String(36)

# query_log is append-only: UPDATE and DELETE are refused by the database itself
_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER query_log_no_update BEFORE UPDATE ON query_log "
        "BEGIN SELECT RAISE(ABORT, 'query_log is append-only'); END",
        "CREATE TRIGGER query_log_no_delete BEFORE DELETE ON query_log "
        "BEGIN SELECT RAISE(ABORT, 'query_log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION query_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'query_log is append-only'; END $$",
        "CREATE TRIGGER query_log_append_only BEFORE UPDATE OR DELETE ON query_log "
        "FOR EACH ROW EXECUTE FUNCTION query_log_append_only()",
    ],
}


def upgrade() -> None:
    adopting = context.config.attributes.get("adopt_existing", False)
    existing = set(sa.inspect(op.get_bind()).get_table_names()) if adopting else set()

    def create(name: str, *elements: sa.schema.SchemaItem) -> sa.Table | None:
        return None if name in existing else op.create_table(name, *elements)

    # -- registry -----------------------------------------------------------------------------
    create(
        "index_versions",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("namespace", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("checks_passed", sa.Boolean, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),
    )
    create(
        "aliases",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("namespace", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(32), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    create(
        "alias_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("latest_before", sa.String(64)),
        sa.Column("latest_after", sa.String(64)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    caller_apps = create(
        "caller_apps",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    if caller_apps is not None:
        now = dt.datetime.now(dt.UTC)
        op.bulk_insert(caller_apps, [{"name": name, "active": True, "created_at": now} for name in SEEDED_CALLER_APPS])
    query_log = create(
        "query_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("caller_app", sa.String(64), nullable=False),
        sa.Column("source_app", sa.String(128)),
        sa.Column("question_sha256", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("passage_ids", sa.Text, nullable=False),
        sa.Column("index_versions", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Index("ix_query_log_at", "tenant_id", "at"),
    )
    if query_log is not None:
        for statement in _APPEND_ONLY.get(op.get_context().dialect.name, []):
            op.execute(statement)

    # -- packs --------------------------------------------------------------------------------
    create(
        "packs",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("pack_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )

    # -- SQL fact store -----------------------------------------------------------------------
    create(
        "facts",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", _TEXT_ID, primary_key=True),
        sa.Column("namespace", sa.String(128), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("subject_key", sa.String(255), nullable=False),
        sa.Column("predicate", sa.Text, nullable=False),
        sa.Column("predicate_key", sa.String(255), nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("value_num", sa.Float(precision=53)),
        sa.Column("value_text", sa.Text),
        sa.Column("unit", sa.String(64)),
        sa.Column("value_type", sa.String(16), nullable=False),
        sa.Column("fact_type", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("valid_from", sa.Date),
        sa.Column("valid_until", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_document", sa.String(200), nullable=False),
        sa.Column("source_version", sa.String(64), nullable=False),
        sa.Column("source_path", sa.Text, nullable=False),
        sa.Column("source_chunk_id", sa.String(64)),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("extraction_method", sa.String(32), nullable=False),
        sa.Column("extraction_model", sa.String(128)),
        sa.Column("prompt_id", sa.String(64)),
        sa.Column("approved_by", sa.String(128)),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("merged_into", _TEXT_ID),
        sa.Index("ix_facts_tenant_key", "tenant_id", "subject_key", "predicate_key", "valid_from"),
        sa.Index("ix_facts_tenant_ns_status", "tenant_id", "namespace", "status"),
        sa.Index("ix_facts_tenant_status", "tenant_id", "status"),
        sa.Index("ix_facts_tenant_source", "tenant_id", "source_document"),
    )
    create(
        "fact_relations",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", _TEXT_ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_id", _TEXT_ID, nullable=False),
        sa.Column("to_id", _TEXT_ID, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("value_diff_pct", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.String(128)),
        sa.Column("resolution", sa.Text),
        sa.Index("ix_fact_relations_from", "tenant_id", "from_id"),
        sa.Index("ix_fact_relations_to", "tenant_id", "to_id"),
        sa.Index("ix_fact_relations_kind", "tenant_id", "kind", "status"),
    )
    create(
        "fact_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("fact_id", _TEXT_ID),
        sa.Column("relation_id", _TEXT_ID),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Index("ix_fact_audit_fact", "tenant_id", "fact_id"),
    )
    create(
        "fact_sources",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("namespace", sa.String(128), primary_key=True),
        sa.Column("doc_id", sa.String(200), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("extractor_version", sa.String(64), nullable=False),
        sa.Column("llm_content_hash", sa.String(64)),
        sa.Column("llm_model", sa.String(128)),
        sa.Column("facts", sa.Integer, nullable=False),
        sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
    )
    create(
        "entity_types",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("type_name", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for name in ("entity_types", "fact_sources", "fact_audit", "fact_relations", "facts", "packs", "query_log",
                 "caller_apps", "alias_events", "aliases", "index_versions"):
        op.drop_table(name)  # the query_log triggers go with their table
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS query_log_append_only()")
