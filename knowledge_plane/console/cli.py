"""``knowledge console``: run the governance console under uvicorn, or hash a password for its accounts file."""

from __future__ import annotations

import getpass
import sys
from types import SimpleNamespace

import click

from knowledge_plane.cli.commands import command, json_flag
from knowledge_plane.cli.output import emit, fail


def register(root: click.Group) -> None:
    root.add_command(command(
        "console", cmd_console, "Run the governance console (review, administration, insight) under uvicorn.",
        click.Option(["--host"], metavar="HOST", default="127.0.0.1", show_default=True),
        click.Option(["--port"], type=int, metavar="PORT", default=8080, show_default=True),
        click.Option(["--hash-password"], is_flag=True,
                     help="Read a password (prompt, or stdin when piped) and print its argon2 hash for the accounts "
                          "file, then exit."),
        json_flag("Print JSON (the hash, or where the console listens)."),
    ))


def cmd_console(args: SimpleNamespace) -> int:
    from knowledge_plane.console.auth import hash_password

    if args.hash_password:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        if not password:
            return fail("an empty password cannot be hashed", args.json)
        emit(args.json, {"hash": hash_password(password)}, lambda d: d["hash"])
        return 0
    import uvicorn

    from knowledge_plane.console.app import create_app

    try:
        app = create_app(args.settings)
    except ValueError as exc:
        return fail(str(exc), args.json)
    emit(args.json, {"url": f"http://{args.host}:{args.port}"}, lambda d: f"governance console on {d['url']}")
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=False)
    return 0
