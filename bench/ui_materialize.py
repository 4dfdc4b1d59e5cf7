"""The Dagster UI's "Materialize" against ``knowledge build`` on the sample corpus (issue 14): prints figures.

The UI's Materialize of every asset over every namespace launches a run of the code location's implicit
asset job, with the code location's default executor. This script times, each in its own process on
its own fresh state (data dir, caches, Dagster instance), interpreter, imports and model load included:

- ``knowledge build --json`` (the ``build_knowledge`` job, in-process executor);
- the UI's run: ``dg.execute_job`` of the implicit asset job with the code location's default
  executor (in-process since issue 14), over every namespace (a partition range, as a backfill of one
  run sends it);
- the same run with Dagster's stock ``multiprocess_executor`` (what the UI used before: one subprocess
  per step, each importing the project and loading the model where it needs it).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/ui_materialize.py [--skip-multiprocess]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("knowledge_build", "ui_default_executor", "ui_multiprocess_executor")


def multiprocess_executor_job():
    """The same assets under Dagster's stock multiprocess executor (module-level: ``dg.reconstructable``
    rebuilds it in each step's subprocess)."""
    import dagster as dg

    from assets import BUILD_ASSETS
    from knowledge_plane.settings import Settings
    from resources import build_resources

    job = dg.define_asset_job("ui_multiprocess", selection=BUILD_ASSETS, executor_def=dg.multiprocess_executor)
    return dg.Definitions(assets=BUILD_ASSETS, jobs=[job], resources=build_resources(Settings())).resolve_job_def(
        "ui_multiprocess"
    )


def child(mode: str) -> None:
    """Run one UI-equivalent materialization in this process (called as a subprocess)."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from knowledge_plane.build.triggers import range_tags
    from knowledge_plane.cli.dagster_instance import prepare_dagster_home
    from knowledge_plane.settings import Settings

    settings = Settings()
    if mode == "ui_multiprocess_executor":
        job = dg.reconstructable(multiprocess_executor_job)
    else:  # the implicit asset job of the code location, found as the run worker of a UI launch finds it
        job = ReconstructableRepository.for_module("definitions", "defs", working_directory=str(ROOT)) \
            .get_reconstructable_job("__ASSET_JOB")
    keys = job.get_definition().partitions_def.get_partition_keys()
    with dg.DagsterInstance.from_config(str(prepare_dagster_home(settings))) as instance:
        result = dg.execute_job(job, instance=instance, tags=range_tags(keys[0], keys[-1]), raise_on_error=False)
        print(f"executor: {job.get_definition().executor_def.name}; success: {result.success}", file=sys.stderr)


def measure(mode: str, work: Path) -> float:
    data = work / mode
    env = {**os.environ, "KNOWLEDGE_DATA_DIR": str(data), "KNOWLEDGE_CACHE_DIR": str(data / "cache"),
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("DAGSTER_HOME", None)
    if mode == "knowledge_build":
        command = [sys.executable, "-m", "knowledge_plane.cli.main", "build", "--json"]
    else:
        command = [sys.executable, __file__, "--child", mode]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    tail = done.stderr.strip().splitlines()[-1:] if done.stderr.strip() else []
    print(f"[bench] {mode}: exit {done.returncode} in {seconds:.1f} s {tail}", file=sys.stderr, flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=MODES[1:], help=argparse.SUPPRESS)
    parser.add_argument("--skip-multiprocess", action="store_true", help="Do not time the multiprocess executor.")
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(args.child)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    try:
        modes = MODES[:2] if args.skip_multiprocess else MODES
        figures = {mode: measure(mode, work) for mode in modes}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'full build of the sample corpus, fresh state':<48}wall time")
    for mode, seconds in figures.items():
        print(f"{mode:<48}{seconds:7.1f} s  ({seconds / figures['knowledge_build']:.2f}× knowledge build)")


if __name__ == "__main__":
    main()
