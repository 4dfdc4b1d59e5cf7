"""``knowledge console``: run the governance console under uvicorn, or hash a password for its accounts file."""

from __future__ import annotations

import argparse
import getpass
import sys

from knowledge_plane.cli.output import emit, fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("console", help="Run the governance console (review, administration, insight) under uvicorn.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--hash-password", action="store_true",
                   help="Read a password (prompt, or stdin when piped) and print its argon2 hash for the accounts "
                        "file, then exit.")
    p.add_argument("--json", action="store_true", help="Print JSON (the hash, or where the console listens).")
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
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
