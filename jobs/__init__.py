"""Jobs: build every stage of the knowledge index, promote, and roll an alias back."""

import dagster as dg

from assets import BUILD_ASSETS
from assets.metadata import table
from assets.partitions import namespaces
from knowledge_plane.build import stages as build
from knowledge_plane.build.triggers import TRIGGER_TAG, range_tags
from knowledge_plane.facts.drift_check import drift_check
from knowledge_plane.storage.registry import Registry
from resources import KnowledgeBase, KnowledgeObjects

BUILD_JOB = "build_knowledge"

build_knowledge = dg.define_asset_job(
    BUILD_JOB,
    selection=dg.AssetSelection.assets(*BUILD_ASSETS),
    # One process for the whole run: the model loads once and every stage batches across namespaces.
    executor_def=dg.in_process_executor,
    description="Sources → parsed documents → chunks → embeddings → checked index versions → @latest.",
)


class RollbackConfig(dg.Config):
    namespace: str


@dg.op(description="Point @latest back at @rollback for one namespace (one transaction).")
def rollback_alias(context: dg.OpExecutionContext, config: RollbackConfig, knowledge: KnowledgeBase) -> None:
    result = build.rollback(knowledge.build_context(context.run), config.namespace)
    context.log.info(f"{result['namespace']}: @latest {result['from']} → {result['to']}")


@dg.job(description="Roll one namespace's @latest back to its @rollback version.")
def rollback_index() -> None:
    rollback_alias()


@dg.schedule(
    job=build_knowledge,
    cron_schedule="0 3 * * *",
    execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly rebuild of every namespace at 03:00; unchanged namespaces are no-ops.",
)
def nightly_rebuild(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    keys = namespaces.get_partition_keys()
    return dg.RunRequest(tags=range_tags(keys[0], keys[-1], **{TRIGGER_TAG: "schedule"}))


_DRIFT_COLUMNS = {
    "namespace": "string", "version": "string", "drift_pct": "float", "dangling": "int", "orphans": "int",
    "unpublished": "int",
}


class DriftConfig(dg.Config):
    remove_orphans: bool = False


@dg.op(description="Compare fact references in every @latest version with the fact store.")
def check_fact_drift(context: dg.OpExecutionContext, config: DriftConfig, knowledge: KnowledgeBase) -> None:
    reports = drift_check(knowledge.settings(), config.remove_orphans)
    for r in reports:
        context.log.info(f"{r['namespace']}@{r['version']}: drift {r['drift_pct']} %, dangling {len(r['dangling'])}, "
                         f"orphans {len(r['orphans'])}, unpublished {len(r['unpublished'])}")
    context.add_output_metadata({"reports": table(
        ({k: (len(v) if isinstance(v, list) else v) for k, v in r.items()} for r in reports), _DRIFT_COLUMNS)})


@dg.job(description="Drift between index payloads and the fact store; removes orphan facts when asked.")
def fact_drift_check() -> None:
    check_fact_drift()


drift_every_6h = dg.ScheduleDefinition(
    name="drift_every_6h",
    job=fact_drift_check, cron_schedule="0 */6 * * *", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The drift check every 6 hours (orphans reported, not removed).",
)


@dg.op(description="Write a checksummed backup of the registry and the kept index versions to the object store.")
def backup_registry(context: dg.OpExecutionContext, knowledge: KnowledgeBase, objects: KnowledgeObjects) -> None:
    from knowledge_plane.storage.backup import backup

    settings = knowledge.settings()
    report = backup(Registry(settings.registry.url.get_secret_value(), settings.tenant_id), objects.store())
    context.log.info(f"backup {report.backup_id}: {report.objects} objects, {report.bytes} bytes")
    context.add_output_metadata({"backup_id": report.backup_id, "prefix": report.prefix,
                                 "objects": report.objects, "bytes": report.bytes, "versions": len(report.versions)})


@dg.job(description="Back up one tenant's registry and index versions (what `knowledge backup` does).")
def backup_knowledge() -> None:
    backup_registry()


nightly_backup = dg.ScheduleDefinition(
    name="nightly_backup",
    job=backup_knowledge, cron_schedule="30 4 * * *", execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly backup at 04:30, after the nightly rebuild; restore with `knowledge restore`.",
)


@dg.op(description="Delete the query-log rows older than KNOWLEDGE_QUERY_LOG_RETENTION_DAYS (the retention role).")
def purge_query_log_rows(context: dg.OpExecutionContext, knowledge: KnowledgeBase) -> None:
    from knowledge_plane.storage.retention import purge_query_log

    settings = knowledge.settings()
    days = settings.registry.query_log_retention_days
    deleted = purge_query_log(settings.registry.url.get_secret_value(), settings.tenant_id, days)
    context.log.info(f"{deleted} query-log rows older than {days} days deleted")
    context.add_output_metadata({"deleted": deleted, "retention_days": days})


@dg.job(description="Apply the query log's retention (what `knowledge querylog purge` does).")
def query_log_retention_job() -> None:
    purge_query_log_rows()


query_log_retention = dg.ScheduleDefinition(
    name="query_log_retention",
    job=query_log_retention_job, cron_schedule="0 5 * * *", execution_timezone="Europe/Paris",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 05:00: query-log rows older than the retention are deleted.",
)


@dg.definitions
def defs() -> dg.Definitions:
    # The code location's default executor: a "Materialize" from the UI (which runs an implicit asset
    # job, not build_knowledge) is then also one process, the model loaded once for all its steps.
    return dg.Definitions(jobs=[build_knowledge, rollback_index, fact_drift_check, backup_knowledge,
                                query_log_retention_job],
                          schedules=[nightly_rebuild, drift_every_6h, nightly_backup, query_log_retention],
                          executor=dg.in_process_executor)
