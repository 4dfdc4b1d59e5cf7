"""``knowledge querylog purge | erase``: the query log's retention and erasure
(knowledge_plane/storage/retention.py)."""

from __future__ import annotations

from types import SimpleNamespace

import click

from knowledge_plane.cli.commands import command, group, json_flag
from knowledge_plane.cli.output import emit, fail


def register(root: click.Group) -> None:
    root.add_command(group(
        "querylog", "The query log's retention and erasure (needs the knowledge_retention role on Postgres).",
        command("purge", cmd_purge, "Delete the query-log rows older than the retention (KNOWLEDGE_QUERY_LOG_"
                "RETENTION_DAYS, or --days).",
                click.Option(["--days"], type=click.IntRange(min=1), help="Keep this many days instead."),
                json_flag()),
        command("erase", cmd_erase, "Delete the query-log rows of one question or one request, whatever their age.",
                click.Option(["--question"], help="The question's text (its hash is what the log holds)."),
                click.Option(["--question-hash"], help="The question's hash as logged (16 hex digits)."),
                click.Option(["--request-id"], help="One request's id (its X-Request-ID)."),
                json_flag()),
    ))


def cmd_purge(args: SimpleNamespace) -> int:
    from knowledge_plane.storage.retention import purge_query_log

    settings = args.settings
    days = args.days or settings.registry.query_log_retention_days
    deleted = purge_query_log(settings.registry.url.get_secret_value(), settings.tenant_id, days)
    emit(args.json, {"days": days, "deleted": deleted}, lambda d: f"{d['deleted']} query-log rows older than "
                                                                   f"{d['days']} days deleted")
    return 0


def cmd_erase(args: SimpleNamespace) -> int:
    from knowledge_plane.serving.query_engine import question_hash
    from knowledge_plane.storage.retention import erase_query_log

    given = [v for v in (args.question, args.question_hash, args.request_id) if v is not None]
    if len(given) != 1:
        return fail("give exactly one of --question, --question-hash, --request-id", args.json, code=2)
    digest = question_hash(args.question) if args.question is not None else args.question_hash
    settings = args.settings
    deleted = erase_query_log(settings.registry.url.get_secret_value(), settings.tenant_id,
                              question_sha256=digest, request_id=args.request_id)
    emit(args.json, {"question_sha256": digest, "request_id": args.request_id, "deleted": deleted},
         lambda d: f"{d['deleted']} query-log rows erased")
    return 0
