"""The upload sensor: one build run per batch of new, changed or deleted objects under uploads/."""

import dagster as dg

from assets.partitions import namespaces
from jobs import build_knowledge
from knowledge_plane.build.triggers import TRIGGER_TAG, bucket_change, range_tags
from knowledge_plane.build.uploads import UPLOADS_PREFIX
from resources import KnowledgeBase, KnowledgeObjects


@dg.sensor(
    job=build_knowledge,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists uploads/{tenant_id}/ in the bucket (or the local object store); when any object was "
    "added, changed or deleted, starts one build of every namespace (unchanged ones are no-ops), keyed by "
    "the listing's ETags so the same batch never starts two runs.",
)
def upload_sensor(context: dg.SensorEvaluationContext, knowledge: KnowledgeBase, objects: KnowledgeObjects):
    tenant = knowledge.tenant_id
    listing = list(objects.store().list(f"{UPLOADS_PREFIX}/{tenant}/"))
    change = bucket_change(listing, context.cursor)
    if change is None:
        return dg.SkipReason(f"no change among {len(listing)} objects under {UPLOADS_PREFIX}/{tenant}/")
    keys = namespaces.get_partition_keys()
    tags = range_tags(
        keys[0],
        keys[-1],
        **{
            TRIGGER_TAG: "uploads",
            "knowledge/objects": str(change.objects),
            "knowledge/modified": str(change.modified),
            "knowledge/removed": str(change.removed),
        },
    )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"uploads:{change.digest[:20]}", tags=tags)], cursor=change.cursor
    )
