"""The one way a test (or a fixture) builds: the Dagster build job that ``knowledge build`` runs, in process."""

from __future__ import annotations

from typing import Any


def build(settings, namespaces: list[str] | None = None) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Run ``build_knowledge`` over ``namespaces`` (every one when None) for these settings, on the
    test session's Dagster instance; returns (success, {namespace: report read from the run})."""
    from knowledge_plane.cli.build import run_build

    success, reports, _ = run_build(settings, namespaces or [])
    return success, {r["namespace"]: r for r in reports}


def build_until(settings, namespace: str, last_asset: str):
    """A run of the build assets for one namespace that stops after ``last_asset`` (the assets before it
    in the job's order, then it), as a run that failed or was killed at the next stage leaves things;
    returns Dagster's in-process result. (``dg.materialize`` of a selection: the job's own resources
    are bound when the code location loads, so the job itself cannot take a subset with others.)"""
    import dagster as dg

    from assets import BUILD_ASSETS
    from resources import build_resources

    order = [asset.key for asset in BUILD_ASSETS]
    selection = order[: order.index(dg.AssetKey(last_asset)) + 1]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(BUILD_ASSETS, selection=selection, partition_key=namespace,
                                resources=build_resources(settings), instance=instance)
    assert result.success
    return result
