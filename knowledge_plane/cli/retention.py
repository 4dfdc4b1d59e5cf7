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
        command("erase", cmd_erase, "Delete the query-log rows of one question, one request or one end user, "
                "whatever their age.",
                click.Option(["--question"], help="The question's text (its hash is what the log holds)."),
                click.Option(["--question-hash"], help="The question's hash as logged (16 hex digits)."),
                click.Option(["--request-id"], help="One request's id (its X-Request-ID)."),
                click.Option(["--end-user"], help="One end user's id as the service saw it: the bearer JWT's "
                             "subject, the X-End-User-ID value or the client address (needs "
                             "KNOWLEDGE_QUERY_LOG_END_USER_KEY)."),
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
    from knowledge_plane.storage.retention import end_user_hash, erase_query_log

    given = [v for v in (args.question, args.question_hash, args.request_id, args.end_user) if v is not None]
    if len(given) != 1:
        return fail("give exactly one of --question, --question-hash, --request-id, --end-user", args.json, code=2)
    digest = question_hash(args.question) if args.question is not None else args.question_hash
    settings = args.settings
    user = None
    if args.end_user is not None:
        key = settings.registry.query_log_end_user_key
        if key is None or not key.get_secret_value():
            return fail("KNOWLEDGE_QUERY_LOG_END_USER_KEY is not set: the query log records no end user to erase "
                        "(set it to the query service's key)", args.json, code=2)
        user = end_user_hash(key.get_secret_value(), args.end_user)
    deleted = erase_query_log(settings.registry.url.get_secret_value(), settings.tenant_id,
                              question_sha256=digest, request_id=args.request_id, end_user_sha=user)
    emit(args.json, {"question_sha256": digest, "request_id": args.request_id, "end_user_hash": user,
                     "deleted": deleted}, lambda d: f"{d['deleted']} query-log rows erased")
    return 0
