"""``knowledge build | status | rollback | promote | ui``: the build plane from a terminal or a CI job.

``build`` starts a Dagster run of the build job on the project's instance, so every CLI build
shows in the Dagster UI; it is the same pipeline, not a second one. Each namespace is promoted or
held back on its own; the command exits 1 when any was held back.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from contextlib import contextmanager
from typing import Any

from knowledge_plane.build import stages as build
from knowledge_plane.build.triggers import TRIGGER_TAG, contiguous_ranges, range_tags
from knowledge_plane.cli.output import emit, fail, table
from knowledge_plane.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="Build, check and promote the index of every (or the given) namespace.")
    p.add_argument("--namespace", action="append", default=[], help="Build only this namespace (repeatable).")
    p.add_argument("--json", action="store_true", help="Print the per-namespace report as JSON.")
    p.add_argument("--verbose", action="store_true", help="Show Dagster's event log on the terminal.")
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                   help="Run tag, e.g. knowledge/commit=<sha> (recorded in the version manifests).")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("status", help="Show @latest, @rollback and the kept versions of every namespace.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("rollback", help="Point a namespace's @latest back at its @rollback version.")
    p.add_argument("namespace")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("promote", help="Point a namespace's @latest at a kept version that passed its checks.")
    p.add_argument("namespace")
    p.add_argument("version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)
    p = sub.add_parser("ui", help="Open the Dagster UI on the project's instance (dagster dev).")
    p.add_argument("--port", default="3000")
    p.set_defaults(func=cmd_ui)


@contextmanager
def build_lock(settings: Settings):
    """One CLI build at a time per data dir (the daemon's runs queue through dagster.yaml instead)."""
    settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.paths.data_dir / "build.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.stderr.write("another build holds the lock; waiting for it to finish…\n")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run_build(
    settings: Settings, wanted: list[str], verbose: bool = False, tags: dict[str, str] | None = None
) -> tuple[bool, list[dict[str, Any]], list[str]]:
    """Run the build job over the wanted namespaces; returns (success, per-namespace report, run ids)."""
    from dagster import DagsterInstance

    from knowledge_plane.cli.dagster_instance import (
        PROCESS_TAG,
        fail_dead_runs,
        load_definitions,
        prepare_dagster_home,
        process_identity,
    )
    from resources import build_resources

    home = prepare_dagster_home(settings)
    defs = load_definitions()
    job = defs.resolve_job_def("build_knowledge")
    all_keys = list(job.partitions_def.get_partition_keys())
    unknown = sorted(set(wanted) - set(all_keys))
    if unknown:
        raise ValueError(f"unknown namespace(s) {', '.join(unknown)}; known: {', '.join(all_keys)}")
    run_config = {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "WARNING"}}}}
    success, run_ids, reports = True, [], []
    with build_lock(settings), DagsterInstance.from_config(str(home)) as instance:
        for run_id in fail_dead_runs(instance):
            sys.stderr.write(f"run {run_id} was left unfinished by a build process that is gone: marked failed\n")
        for start, end in contiguous_ranges(all_keys, wanted or all_keys):
            result = job.execute_in_process(
                instance=instance,
                run_config=run_config,
                raise_on_error=False,
                resources=build_resources(settings),
                tags=range_tags(start, end, **{TRIGGER_TAG: "cli", PROCESS_TAG: process_identity(), **(tags or {})}),
            )
            ctx = build.BuildContext(settings, run_id=result.run_id)
            keys = all_keys[all_keys.index(start) : all_keys.index(end) + 1]
            run_reports = [build.build_summary(ctx, ns) for ns in keys]
            success &= result.success and not any(r["held_back"] for r in run_reports)
            run_ids.append(result.run_id)
            reports.extend(run_reports)
    return success, reports, run_ids


def _render_build(data: dict[str, Any]) -> str:
    rows = [
        [
            r["namespace"],
            r["version"],
            "yes" if r["promoted"] else "no",
            r["documents"],
            r["chunks"],
            r["chunks_embedded"],
            len(r["quarantined"]),
            r["reason"],
        ]
        for r in data["namespaces"]
    ]
    out = [table(rows, ["namespace", "version", "promoted", "docs", "chunks", "embedded", "quarantined", "why"])]
    held_back = [r["namespace"] for r in data["namespaces"] if r["held_back"]]
    if held_back:
        out.append(f"HELD BACK (still serving their previous @latest): {', '.join(held_back)}")
    for r in data["namespaces"]:
        for q in r["quarantined"]:
            out.append(f"quarantined {q['path']}: {q['reason']}: {q['detail']}")
        for c in r["checks"]:
            if not c["passed"]:
                out.append(f"CHECK FAILED {r['namespace']} {c['name']}: {c['detail']}")
    out.append(f"run {', '.join(data['run_ids'])}: {'success' if data['success'] else 'FAILED'}")
    return "\n".join(out)


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--tag expects KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def cmd_build(args: argparse.Namespace) -> int:
    try:
        settings = args.settings
        if settings.build.progress_bar is None:  # unset: a bar when a person watches the terminal
            settings = settings.updated(build={"progress_bar": sys.stderr.isatty() and not args.json})
        tags = dict(_tag(t) for t in args.tag)
        success, reports, run_ids = run_build(settings, args.namespace, args.verbose, tags)
    except ValueError as exc:
        return fail(str(exc), args.json)
    emit(args.json, {"success": success, "run_ids": run_ids, "namespaces": reports}, _render_build)
    return 0 if success else 1


def cmd_status(args: argparse.Namespace) -> int:
    from knowledge_plane.build.sources import discover_namespaces

    settings = args.settings
    data = build.status(build.BuildContext(settings), discover_namespaces(settings))
    emit(
        args.json,
        data,
        lambda d: table(
            [[r["namespace"], r["latest"], r["rollback"], ", ".join(v["version"] for v in r["versions"]),
              _evaluation(r)] for r in d],
            ["namespace", "@latest", "@rollback", "kept versions", "evaluation of @latest"],
        ),
    )
    return 0


def _evaluation(row: dict) -> str:
    """The golden-set figures of the version @latest serves, short enough for a table cell."""
    figures = next((v["evaluation"] for v in row["versions"] if v["version"] == row["latest"]), None)
    if not figures:
        return "-"
    names = {"recall_at_5": "R@5", "mrr": "MRR", "answer_in_top_3": "top3", "answered": "answered",
             "turned_away": "turned away"}
    return " ".join(f"{names[k]} {v:.2f}" for k, v in figures.items() if k in names)


def cmd_rollback(args: argparse.Namespace) -> int:
    settings = args.settings
    try:
        data = build.rollback(build.BuildContext(settings), args.namespace)
    except (LookupError, PermissionError, build.BadTarget) as exc:
        return fail(f"rollback refused: {exc}", args.json)
    emit(args.json, data, lambda d: f"{d['namespace']}: @latest {d['from']} → {d['to']} (@rollback {d['rollback']})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    settings = args.settings
    try:
        data = build.promote(build.BuildContext(settings), args.namespace, args.version)
    except (LookupError, PermissionError, build.BadTarget) as exc:
        return fail(f"promote refused: {exc}", args.json)
    emit(args.json, data, lambda d: f"{d['namespace']}: @latest {d['from']} → {d['to']} (@rollback {d['rollback']})")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from knowledge_plane.cli.dagster_instance import prepare_dagster_home
    from knowledge_plane.settings import PROJECT_ROOT

    home = prepare_dagster_home(args.settings)
    os.chdir(PROJECT_ROOT)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    os.execve(dagster, [dagster, "dev", "-w", "workspace.yaml", "-p", args.port],
              {**os.environ, "DAGSTER_HOME": str(home)})
    return 0
