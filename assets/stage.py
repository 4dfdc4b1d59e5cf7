"""The one way a build stage becomes an asset: ``@stage_asset(...)`` over the stage's per-namespace function.

Every build asset is partitioned by namespace with a single-run backfill policy (a run over many
namespaces is one step per stage, so the embedding stage can batch all of them in one encode),
receives the ``knowledge`` resource (and ``objects`` when it reads uploads), and builds one
BuildContext for the run. The stage module contributes only what differs: its name, group, kinds,
description, code version, upstream assets, checks, and a function that runs the stage for the
run's namespaces and returns one ``NamespaceResult`` per namespace.

What the UI shows is per namespace although the step is one (researched on Dagster 1.13): a
``MaterializeResult`` of a partition-range step becomes one materialization per partition, each with
the metadata given by ``context.add_asset_metadata(..., partition_key=ns)`` for that partition, so each
partition page and plot carries its own namespace's figures. Checks are partitioned
(``AssetCheckSpec(partitions_def=...)``, a preview feature in 1.13): Dagster's ``AssetCheckResult`` can
only name the step's single partition, so each namespace's result is an ``AssetCheckEvaluation`` with
``partition=ns``, emitted after the materializations it checks. The assets are one-spec
``multi_asset``s with ``can_subset=True`` because that is what makes check outputs optional, which
evaluations emitted this way need. A namespace that must not be materialized (``index_aliases`` holding
one back) gets no materialization: the others are materialized one by one, then the step fails, so
Dagster marks only the held-back partitions failed.
"""

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg

# Not exported at the top level in 1.13; it links a check result to the materialization it judged,
# as Dagster's own AssetCheckResult does, so the UI shows each check against that partition's run.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from assets.partitions import namespaces, single_run
from knowledge_plane.build.stages import BuildContext

# Shown on every asset in the UI (owners must be an e-mail or "team:<name>").
OWNERS = ["team:knowledge-plane"]
TAGS = {"plane": "build"}


@dataclass(frozen=True)
class CheckOutcome:
    """One check's result on one namespace."""

    name: str
    passed: bool
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NamespaceResult:
    """What a stage reports for one namespace: the metadata of its partition's materialization, its checks,
    and whether it is materialized at all (False: the partition fails, with ``failure`` as the reason; a
    materialized namespace's ``failure`` is an error shown in its metadata, see ``each_namespace``)."""

    metadata: Mapping[str, Any]
    checks: Sequence[CheckOutcome] = ()
    materialized: bool = True
    failure: str = ""


R = TypeVar("R")


def each_namespace(
    context: dg.AssetExecutionContext, stage_one: Callable[[str], R], *, final: bool = False
) -> tuple[dict[str, R], dict[str, NamespaceResult]]:
    """Run one namespace's stage for each namespace of the run, each on its own: an error in one is
    logged with its traceback and becomes that namespace's result, and the others go on — one
    namespace's failure never holds back another. Returns (records by namespace, results of the
    namespaces that failed). Before the last stage a failed namespace is still materialized, with
    its ``error``, so the step succeeds and the next stages run for the others (the failed one has no
    record for them to read, so it fails there too); at the last stage (``final``) its partition fails.
    """
    records: dict[str, R] = {}
    failed: dict[str, NamespaceResult] = {}
    for ns in context.partition_keys:
        try:
            records[ns] = stage_one(ns)
        except Exception as exc:  # noqa: BLE001 — any error is this namespace's, reported as such
            context.log.exception(f"{ns}: {context.asset_key.to_user_string()} failed")
            why = f"{type(exc).__name__}: {exc}"
            failed[ns] = NamespaceResult({"error": why}, materialized=not final, failure=why)
    return records, failed


# (context, BuildContext) → {namespace: NamespaceResult}, one per partition key of the run.
Summary = Callable[[dg.AssetExecutionContext, BuildContext], "dict[str, NamespaceResult]"]


def _latest_materialization(
    context: dg.AssetExecutionContext, key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization a namespace's check result refers to: the one this step just recorded, or none
    (a held-back namespace has none in this run: its result must not point at another run's)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if not records or records[0].run_id != context.run.run_id:
        return None
    r = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
    )


def stage_asset(
    *,
    group: str,
    kinds: set[str],
    description: str,
    code_version: str | None = None,
    deps: Sequence[str] = (),
    check_specs: Sequence[tuple[str, str, bool]] = (),
    reads_uploads: bool = False,
) -> Callable[[Summary], dg.AssetsDefinition]:
    """Decorate a stage's summary function into the asset of the same name. ``check_specs`` are
    (name, description, blocking), each partitioned by namespace."""
    resource_keys = {"knowledge", "objects"} if reads_uploads else {"knowledge"}

    def decorate(summarize: Summary) -> dg.AssetsDefinition:
        key = dg.AssetKey(summarize.__name__)
        with warnings.catch_warnings():  # partitioned checks are a preview feature of Dagster 1.13
            warnings.simplefilter("ignore", dg.PreviewWarning)
            checks = [
                dg.AssetCheckSpec(name, asset=key, description=text, blocking=blocking, partitions_def=namespaces)
                for name, text, blocking in check_specs
            ]
        blocking = {name for name, _, is_blocking in check_specs if is_blocking}

        @dg.multi_asset(
            name=summarize.__name__,
            specs=[
                dg.AssetSpec(
                    key, group_name=group, kinds=kinds, deps=list(deps), description=description,
                    code_version=code_version, owners=OWNERS, tags=TAGS,
                )
            ],
            check_specs=checks,
            partitions_def=namespaces,
            backfill_policy=single_run,
            can_subset=True,  # makes the check outputs optional: results come as per-partition evaluations
            required_resource_keys=resource_keys,
        )
        def stage(context: dg.AssetExecutionContext) -> Iterator[Any]:
            objects = context.resources.objects if reads_uploads else None
            ctx = context.resources.knowledge.build_context(context.run, objects, context.instance)
            results = summarize(context, ctx)
            failed = {ns: r.failure for ns, r in results.items() if not r.materialized}
            if not failed:
                for ns, r in results.items():
                    context.add_asset_metadata(dict(r.metadata), partition_key=ns)
                yield dg.MaterializeResult(asset_key=key)
            else:  # the step's output would mark every partition materialized: only the sound ones are
                for ns, r in results.items():
                    if r.materialized:
                        yield dg.AssetMaterialization(asset_key=key, partition=ns, metadata=dict(r.metadata))
            selected = {k.name for k in context.selected_asset_check_keys}
            for ns, r in results.items():
                target = _latest_materialization(context, key, ns) if r.checks and r.materialized else None
                for c in r.checks:
                    if c.name in selected:
                        yield dg.AssetCheckEvaluation(
                            asset_key=key, check_name=c.name, passed=c.passed, partition=ns,
                            description=c.description, metadata=dict(c.metadata), blocking=c.name in blocking,
                            target_materialization_data=target,
                        )
            if failed:
                raise dg.Failure(
                    description="; ".join(f"{ns}: {why}" for ns, why in failed.items()),
                    metadata={"failed_namespaces": ", ".join(failed)},
                )

        return stage

    return decorate
