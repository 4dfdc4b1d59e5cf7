"""The per-namespace report of a build run, read from the run's asset materializations and check results.

This is what ``knowledge build`` prints and what the tests assert on: the same tables the Dagster UI
shows (one row per namespace, schemas in assets/), so the report cannot say something the run did not.
A namespace that a stage never reached gets that stage's defaults and a reason saying where the run
stopped.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from knowledge_plane.build.checks import CHECK_NAMES, HELD_BACK_CHECK


def _rows(metadata: dict[str, dg.MetadataValue] | None, key: str) -> list[dict[str, Any]]:
    value = (metadata or {}).get(key)
    return [dict(record.data) for record in value.records] if isinstance(value, dg.TableMetadataValue) else []


def _by_namespace(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["namespace"]: row for row in rows}


def namespace_reports(result: dg.ExecuteInProcessResult, namespaces: list[str]) -> list[dict[str, Any]]:
    """One report per namespace of the run, in the given order (see the module docstring)."""

    def materialized(asset: str) -> dict[str, dg.MetadataValue] | None:
        # A single-run backfill emits one materialization per partition, all with the run's metadata.
        events = result.asset_materializations_for_node(asset)
        return events[0].metadata if events else None

    parsed = materialized("parsed_documents")
    documents = _by_namespace(_rows(parsed, "namespaces"))
    quarantined = _rows(parsed, "quarantined_files")
    chunks = _by_namespace(_rows(materialized("document_chunks"), "namespaces"))
    embedded = _by_namespace(_rows(materialized("chunk_embeddings"), "namespaces"))
    versions = _by_namespace(_rows(materialized("index_versions"), "versions"))
    aliases = _by_namespace(_rows(materialized("index_aliases"), "aliases"))
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    checks = {
        name: _by_namespace(_rows(evaluations[name].metadata, "namespaces"))
        for name in CHECK_NAMES
        if name in evaluations
    }
    held_back = _by_namespace(_rows(evaluations[HELD_BACK_CHECK].metadata, "held_back")) if (
        HELD_BACK_CHECK in evaluations) else {}

    reports = []
    for ns in namespaces:
        version, alias, held = versions.get(ns, {}), aliases.get(ns), held_back.get(ns)
        reports.append(
            {
                "namespace": ns,
                "version": version.get("version"),
                "promoted": bool(alias and alias["promoted"]),
                "held_back": held is not None,
                "failed_checks": held["failed_checks"].split(", ") if held and held["failed_checks"] else [],
                "reason": alias["reason"] if alias else (
                    "not promoted: the run stopped before index_aliases" if version
                    else "not built: the run stopped early"
                ),
                "latest": alias["latest"] if alias else None,
                "documents": documents.get(ns, {}).get("documents", 0),
                "chunks": chunks.get(ns, {}).get("chunks", 0),
                "chunks_embedded": embedded.get(ns, {}).get("chunks_embedded", 0),
                "checks": [
                    {"name": name, "passed": rows[ns]["passed"], "detail": rows[ns]["detail"]}
                    for name, rows in checks.items()
                    if ns in rows
                ],
                "quarantined": [
                    {"path": q["path"], "reason": q["reason"], "detail": q["detail"]}
                    for q in quarantined
                    if q["namespace"] == ns
                ],
            }
        )
    return reports
