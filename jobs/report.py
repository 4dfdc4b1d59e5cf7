"""The per-namespace report of a build run, read from the run's asset materializations and check results.

This is what ``knowledge build`` prints and what the tests assert on: the metadata the Dagster UI shows
on each namespace's partition (assets/), so the report cannot say something the run did not. A
namespace that a stage never reached gets that stage's defaults and a reason saying where the run
stopped.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from knowledge_plane.build.checks import CHECK_NAMES, HELD_BACK_CHECK

# The build's assets in the job's order: the first that failed on a namespace is its reason.
STAGE_ORDER = ("raw_documents", "parsed_documents", "document_chunks", "chunk_embeddings", "extracted_facts",
               "index_versions", "index_aliases")


def _rows(value: dg.MetadataValue | None) -> list[dict[str, Any]]:
    return [dict(record.data) for record in value.records] if isinstance(value, dg.TableMetadataValue) else []


def _plain(metadata: dict[str, dg.MetadataValue]) -> dict[str, Any]:
    return {name: value.value for name, value in metadata.items()}


def namespace_reports(result: dg.ExecuteInProcessResult, namespaces: list[str]) -> list[dict[str, Any]]:
    """One report per namespace of the run, in the given order (see the module docstring)."""

    def materialized(asset: str) -> dict[str, dict[str, dg.MetadataValue]]:
        # one materialization per namespace partition, each with that namespace's metadata
        return {e.partition: dict(e.metadata) for e in result.asset_materializations_for_node(asset) if e.partition}

    stages = {asset: materialized(asset) for asset in STAGE_ORDER}
    parsed, chunks, embedded = stages["parsed_documents"], stages["document_chunks"], stages["chunk_embeddings"]
    versions, aliases = stages["index_versions"], stages["index_aliases"]
    evaluations: dict[str, dict[str, dg.AssetCheckEvaluation]] = {}
    for e in result.get_asset_check_evaluations():
        evaluations.setdefault(e.partition or "", {})[e.check_name] = e

    reports = []
    for ns in namespaces:
        checks = evaluations.get(ns, {})
        held = checks.get(HELD_BACK_CHECK)
        held = held if held is not None and not held.passed else None
        # a held-back namespace has no alias materialization: its check result holds the same fields
        alias = _plain(aliases[ns]) if ns in aliases else (_plain(held.metadata) if held else None)
        version = _plain(versions.get(ns, {}))
        # the first stage that failed on this namespace (an exception, not a check: see assets.stage)
        error = next((f"{asset} failed: {by_ns[ns]['error'].value}" for asset, by_ns in stages.items()
                      if "error" in by_ns.get(ns, {})), None)
        reports.append(
            {
                "namespace": ns,
                "version": version.get("version") or None,
                "promoted": bool(alias and alias["promoted"]),
                "held_back": held is not None,
                "failed_checks": alias["failed_checks"].split(", ") if held and alias["failed_checks"] else [],
                "reason": alias["reason"] if alias else error or (
                    "not promoted: the run stopped before index_aliases" if version
                    else "not built: the run stopped early"
                ),
                "latest": (alias["latest"] or None) if alias else None,
                "documents": _plain(parsed.get(ns, {})).get("documents", 0),
                "chunks": _plain(chunks.get(ns, {})).get("chunks", 0),
                "chunks_embedded": _plain(embedded.get(ns, {})).get("chunks_embedded", 0),
                "checks": [
                    {"name": name, "passed": checks[name].passed, "detail": checks[name].description}
                    for name in CHECK_NAMES
                    if name in checks
                ],
                "quarantined": [
                    {"path": q["path"], "reason": q["reason"], "detail": q["detail"]}
                    for q in _rows(parsed.get(ns, {}).get("quarantined_files"))
                ],
            }
        )
    return reports
