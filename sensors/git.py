"""The Git sensor: a build of the namespaces a new commit on the watched branch touches."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.partitions import namespaces
from jobs import build_knowledge
from knowledge_plane.build.triggers import (
    COMMIT_TAG,
    TRIGGER_TAG,
    NotWatchable,
    contiguous_ranges,
    git_change,
    range_tags,
)
from resources import KnowledgeBase


class GitWatch(dg.ConfigurableResource):
    """Which repository and branch the Git sensor watches (default: the corpus's repository, main)."""

    repository: str = Field(
        default="", description="Path of the Git working copy; empty: the one that holds the corpus."
    )
    branch: str = Field(default="main", description="Branch whose new commits trigger builds.")


@dg.sensor(
    job=build_knowledge,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches a branch; when a new commit touches knowledge/**, builds the namespaces it touched, "
    "tagged with the commit (recorded in each version's manifest). Cursor: the last commit seen. Its first "
    "tick only records the branch's current commit and starts nothing: builds start from the next commit.",
)
def git_sensor(context: dg.SensorEvaluationContext, knowledge: KnowledgeBase, git: GitWatch):
    repository = Path(git.repository) if git.repository else None
    try:
        change = git_change(repository, git.branch, Path(knowledge.corpus_dir), context.cursor)
    except NotWatchable as exc:
        return dg.SkipReason(str(exc))
    if change is None:
        return dg.SkipReason(f"{git.branch} has not moved from {context.cursor}")
    if not context.cursor:
        # Opening the UI (or turning the sensor on) must not start builds unannounced: the current
        # commit becomes the starting point; `knowledge build` (or Materialize) builds what is there now.
        return dg.SensorResult(
            skip_reason=f"first tick: started watching {git.branch} at {change.sha[:12]}; builds start from "
            "its next commit (build the current state with `knowledge build` or the UI's Materialize)",
            cursor=change.sha,
        )
    keys = namespaces.get_partition_keys()
    touched = [ns for ns in change.namespaces if ns in keys]
    requests = [
        dg.RunRequest(
            run_key=f"git:{change.sha}:{start}...{end}",
            tags=range_tags(start, end, **{TRIGGER_TAG: "git", COMMIT_TAG: change.sha}),
        )
        for start, end in contiguous_ranges(keys, touched)
    ]
    if not requests:
        return dg.SensorResult(skip_reason=f"{change.sha[:12]} touches nothing under the corpus", cursor=change.sha)
    return dg.SensorResult(run_requests=requests, cursor=change.sha)
