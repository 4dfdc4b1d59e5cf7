"""The one way a test (or a fixture) builds: the Dagster build job that ``knowledge build`` runs, in process."""

from __future__ import annotations

from typing import Any


def build(settings, namespaces: list[str] | None = None) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run ``build_knowledge`` over ``namespaces`` (every one when None) for these settings, on the
    test session's Dagster instance; returns (success, {namespace: report read from the run})."""
    from knowledge_plane.cli.build import run_build

    success, reports, _ = run_build(settings, namespaces or [])
    return success, {r["namespace"]: r for r in reports}
