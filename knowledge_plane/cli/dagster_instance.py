"""The project's Dagster instance: DAGSTER_HOME under the data dir, the project's dagster.yaml, and the
CLI runs left unfinished by a process that died."""

from __future__ import annotations

import os
import shutil
import socket
import warnings
from pathlib import Path
from typing import Any

from knowledge_plane.settings import PROJECT_ROOT, Settings
from knowledge_plane.storage.processes import process_started_at


def prepare_dagster_home(settings: Settings) -> Path:
    """Create the Dagster home of the settings and give it the project's dagster.yaml, so CLI runs show
    in the UI; open it with ``DagsterInstance.from_config`` (nothing is written to the environment)."""
    home = settings.paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source, target = PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return home


def load_definitions():
    """Import the code location quietly: Beta warnings are for Dagster developers, not CLI users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import definitions

    return definitions.defs


# A CLI build runs in this process (execute_in_process): no run launcher watches it, so Dagster's
# run monitoring cannot tell when it was killed. Each run carries the identity of the process that
# runs it; a later build fails the runs whose process is gone, so they stop holding the run queue.
PROCESS_TAG = "knowledge/process"


def process_identity() -> str:
    """host:pid:start time of this process: with the start time, a reused pid is not mistaken for it."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_started_at(pid) or 0:.0f}"


def _alive(identity: str) -> bool:
    _host, pid, started = identity.rsplit(":", 2)
    now_started = process_started_at(int(pid))
    return now_started is not None and (now_started == 0.0 or abs(now_started - float(started)) <= 2)


def fail_dead_runs(instance: Any) -> list[str]:
    """Mark failed the unfinished runs started by a process of this host that no longer exists;
    returns their run ids."""
    from dagster import DagsterRunStatus, RunsFilter

    unfinished = [
        DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING,
    ]
    failed = []
    for run in instance.get_runs(filters=RunsFilter(statuses=unfinished)):
        identity = run.tags.get(PROCESS_TAG)
        if not identity or identity.rsplit(":", 2)[0] != socket.gethostname() or _alive(identity):
            continue
        instance.report_run_failed(
            run, f"the process that ran this build ({identity}) is gone (killed or crashed); marked failed by "
            "`knowledge build` so the run queue moves on"
        )
        failed.append(run.run_id)
    return failed
