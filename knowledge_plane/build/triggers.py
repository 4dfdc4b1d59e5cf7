"""What changed since a sensor last looked: a bucket listing against a cursor, a Git branch against a SHA.

Pure functions, so the sensors stay thin and the same logic is tested without a Dagster daemon.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from knowledge_plane.domain.ids import NAMESPACE_RE, sha256_hex
from knowledge_plane.storage.object_store import ObjectInfo


@dataclass(frozen=True)
class BucketChange:
    digest: str  # of every (key, ETag): the run key, so one batch of changes starts one run
    objects: int
    modified: int  # objects whose (LastModified, key) is past the cursor's high-water mark
    removed: int  # objects gone since the last listing (deleted, or replaced under a new key)
    cursor: str


def bucket_change(listing: list[ObjectInfo], cursor: str | None) -> BucketChange | None:
    """None when nothing changed since the cursor; else what changed and the next cursor."""
    digest = sha256_hex("\n".join(f"{o.key}\t{o.etag}" for o in sorted(listing, key=lambda o: o.key)))
    previous = json.loads(cursor) if cursor else {"digest": None, "hw": ["", ""], "objects": 0}
    if digest == previous["digest"] or (cursor is None and not listing):
        return None
    high_water = tuple(previous["hw"])
    marks = [(o.last_modified.isoformat(), o.key) for o in listing]
    modified = sum(1 for mark in marks if mark > high_water)
    removed = max(0, previous["objects"] - (len(listing) - modified))
    hw = max(marks, default=high_water)
    new_cursor = json.dumps({"digest": digest, "hw": list(hw), "objects": len(listing)})
    return BucketChange(digest, len(listing), modified, removed, new_cursor)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


@dataclass(frozen=True)
class GitChange:
    sha: str
    namespaces: list[str]
    paths: list[str]


class NotWatchable(ValueError):
    """The corpus is not in the Git repository the sensor was told to watch (or in none)."""


def git_change(repo: Path | None, branch: str, corpus_dir: Path, last_sha: str | None) -> GitChange | None:
    """The namespaces a branch's new commits touch under the corpus; None if the branch has not moved.

    ``repo`` None: the repository that holds the corpus (the corpus may live outside the project).
    With no previous SHA (first look) or one Git no longer has, every namespace counts as touched.
    """
    corpus_dir = corpus_dir.resolve()
    try:
        top = Path(_git(repo or corpus_dir, "rev-parse", "--show-toplevel")).resolve()
    except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError) as exc:
        raise NotWatchable(f"{repo or corpus_dir} is not in a Git working copy: nothing to watch") from exc
    try:
        corpus = corpus_dir.relative_to(top).as_posix()
    except ValueError:
        raise NotWatchable(
            f"the corpus {corpus_dir} is outside the watched repository {top}: point the git resource's "
            "repository at the repository that holds the corpus, or leave it empty"
        ) from None
    prefix = "" if corpus == "." else corpus + "/"
    sha = _git(top, "rev-parse", "--verify", f"{branch}^{{commit}}")
    if sha == last_sha:
        return None
    try:
        if not last_sha:
            raise subprocess.CalledProcessError(1, "git diff")
        paths = _git(top, "diff", "--name-only", f"{last_sha}..{sha}", "--", corpus).splitlines()
    except subprocess.CalledProcessError:
        paths = _git(top, "ls-tree", "-r", "--full-name", "--name-only", sha, "--", corpus).splitlines()
    namespaces = set()
    for path in paths:
        parts = path[len(prefix) :].split("/")
        if len(parts) > 1 and NAMESPACE_RE.match(f"knowledge:{parts[0]}"):
            namespaces.add(f"knowledge:{parts[0]}")
    return GitChange(sha, sorted(namespaces), paths)


def contiguous_ranges(all_keys: list[str], wanted: list[str]) -> list[tuple[str, str]]:
    """Group wanted partition keys into runs of neighbours: a single-run backfill takes a range."""
    positions = sorted(all_keys.index(k) for k in set(wanted))
    ranges: list[list[int]] = []
    for pos in positions:
        if ranges and pos == ranges[-1][1] + 1:
            ranges[-1][1] = pos
        else:
            ranges.append([pos, pos])
    return [(all_keys[a], all_keys[b]) for a, b in ranges]


# Run tags shared by the CLI, sensors and schedules (Dagster's names for a single-run partition range).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
TRIGGER_TAG = "knowledge/trigger"
COMMIT_TAG = "knowledge/commit"


def range_tags(start: str, end: str, **extra: str) -> dict[str, str]:
    return {RANGE_START: start, RANGE_END: end, **extra}
