"""The one way a build stage becomes an asset: ``@stage_asset(...)`` over the stage's summary function.

Every build asset is partitioned by namespace with a single-run backfill policy (a run over many
namespaces is one step per stage), receives the ``knowledge`` resource (and ``objects`` when it reads
uploads), and builds one BuildContext for the run. The stage module contributes only what differs:
its name, group, kinds, description, upstream assets, checks, and a function that runs the stage for
the run's namespaces and returns the metadata the UI shows.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from assets.partitions import namespaces, single_run
from knowledge_plane.build.stages import BuildContext

# (context, BuildContext) → the asset's metadata, or a MaterializeResult when it also reports checks.
Summary = Callable[[dg.AssetExecutionContext, BuildContext], "dict[str, Any] | dg.MaterializeResult"]


def stage_asset(
    *,
    group: str,
    kinds: set[str],
    description: str,
    deps: Sequence[str] = (),
    check_specs: Sequence[dg.AssetCheckSpec] = (),
    reads_uploads: bool = False,
) -> Callable[[Summary], dg.AssetsDefinition]:
    """Decorate a stage's summary function into the asset of the same name."""
    resource_keys = {"knowledge", "objects"} if reads_uploads else {"knowledge"}

    def decorate(summarize: Summary) -> dg.AssetsDefinition:
        @dg.asset(
            name=summarize.__name__,
            partitions_def=namespaces,
            backfill_policy=single_run,
            group_name=group,
            kinds=kinds,
            deps=list(deps),
            check_specs=list(check_specs),
            description=description,
            required_resource_keys=resource_keys,
        )
        def stage(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            objects = context.resources.objects if reads_uploads else None
            ctx = context.resources.knowledge.build_context(context.run, objects)
            summary = summarize(context, ctx)
            return summary if isinstance(summary, dg.MaterializeResult) else dg.MaterializeResult(metadata=summary)

        return stage

    return decorate
