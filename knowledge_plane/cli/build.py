"""``knowledge build | status | rollback | promote | ui``: the build plane from a terminal or a CI job.

``build`` starts a Dagster run of the build job on the project's instance, so every CLI build
shows in the Dagster UI; it is the same pipeline, not a second one. Each namespace is promoted or
held back on its own; the command exits 1 when any was held back. The build plane (Dagster, the
stages and their parsers) is imported by the handlers that need it, not by ``status`` or ``--help``.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

import click

from knowledge_plane.build.triggers import TRIGGER_TAG, contiguous_ranges, range_tags
from knowledge_plane.cli.commands import command, json_flag
from knowledge_plane.cli.output import emit, fail, table
from knowledge_plane.settings import Settings


def register(root: click.Group) -> None:
    root.add_command(command(
        "build", cmd_build, "Build, check and promote the index of every (or the given) namespace.",
        click.Option(["--namespace"], multiple=True, metavar="NS", help="Build only this namespace (repeatable)."),
        json_flag("Print the per-namespace report as JSON."),
        click.Option(["--verbose"], is_flag=True, help="Show Dagster's event log on the terminal."),
        click.Option(["--tag"], multiple=True, metavar="KEY=VALUE",
                     help="Run tag, e.g. knowledge/commit=<sha> (recorded in the version manifests)."),
    ))
    root.add_command(command(
        "status", cmd_status, "Show @latest, @rollback and the kept versions of every namespace.", json_flag()
    ))
    root.add_command(command(
        "rollback", cmd_rollback, "Point a namespace's @latest back at its @rollback version.",
        click.Argument(["namespace"]), json_flag(),
    ))
    root.add_command(command(
        "promote", cmd_promote, "Point a namespace's @latest at a kept version that passed its checks.",
        click.Argument(["namespace"]), click.Argument(["version"]), json_flag(),
    ))
    root.add_command(command(
        "ui", cmd_ui, "Open the Dagster UI on the project's instance (dagster dev).",
        click.Option(["--port"], metavar="PORT", default="3000", show_default=True),
    ))


def run_build(
    settings: Settings, wanted: list[str], verbose: bool = False, tags: dict[str, str] | None = None
) -> tuple[bool, list[dict[str, Any]], list[str]]:
    """Run the build job over the wanted namespaces; returns (success, per-namespace report, run ids).

    No lock: stage records are per run, so builds may overlap, even on one namespace (the one that
    promotes last holds @latest). The report is read from each run's materializations and check
    results (jobs.report)."""
    from dagster import DagsterInstance
    from filelock import FileLock

    from jobs.report import namespace_reports
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
    # Two builds opening a new SQLite instance at once would both create its schema ("table runs already
    # exists"): the first creates it, the other waits. Runs themselves need no lock (see the docstring).
    with FileLock(settings.paths.dagster_home / ".instance-init.lock"):
        instance = DagsterInstance.from_config(str(home))
    with instance:
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
            run_reports = namespace_reports(result, all_keys[all_keys.index(start) : all_keys.index(end) + 1])
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


def cmd_build(args: SimpleNamespace) -> int:
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


def cmd_status(args: SimpleNamespace) -> int:
    from knowledge_plane.build.sources import discover_namespaces
    from knowledge_plane.storage.registry import Registry

    settings = args.settings
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    data = registry.status(discover_namespaces(settings))
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


def cmd_rollback(args: SimpleNamespace) -> int:
    from knowledge_plane.build import stages as build
    from knowledge_plane.cli.namespaces import namespace_problem

    ctx = build.BuildContext(args.settings)
    if problem := namespace_problem(args.settings, ctx.registry, args.namespace):
        return fail(f"rollback refused: {problem}", args.json)
    try:
        data = build.rollback(ctx, args.namespace)
    except (LookupError, PermissionError, build.BadTarget) as exc:
        return fail(f"rollback refused: {exc}", args.json)
    emit(args.json, data, lambda d: f"{d['namespace']}: @latest {d['from']} → {d['to']} (@rollback {d['rollback']})")
    return 0


def cmd_promote(args: SimpleNamespace) -> int:
    from knowledge_plane.build import stages as build
    from knowledge_plane.cli.namespaces import namespace_problem

    ctx = build.BuildContext(args.settings)
    if problem := namespace_problem(args.settings, ctx.registry, args.namespace):
        return fail(f"promote refused: {problem}", args.json)
    try:
        data = build.promote(ctx, args.namespace, args.version)
    except (LookupError, PermissionError, build.BadTarget) as exc:
        return fail(f"promote refused: {exc}", args.json)
    emit(args.json, data, lambda d: f"{d['namespace']}: @latest {d['from']} → {d['to']} (@rollback {d['rollback']})")
    return 0


def cmd_ui(args: SimpleNamespace) -> int:
    from knowledge_plane.cli.dagster_instance import prepare_dagster_home
    from knowledge_plane.settings import PROJECT_ROOT

    home = prepare_dagster_home(args.settings)
    os.chdir(PROJECT_ROOT)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    os.execve(dagster, [dagster, "dev", "-w", "workspace.yaml", "-p", args.port],
              {**os.environ, "DAGSTER_HOME": str(home)})
    return 0
