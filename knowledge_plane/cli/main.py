"""Entry point of ``knowledge``: each command group lives in its own module with a register().

``main`` builds the process's settings once (``args.settings``); a handler reads them from there.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add sub-commands: each exposes register(subparsers); a handler returns an exit code.
COMMAND_MODULES = ("knowledge_plane.cli.build", "knowledge_plane.cli.sources", "knowledge_plane.cli.query",
                   "knowledge_plane.cli.facts", "knowledge_plane.cli.db", "knowledge_plane.console.cli")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="knowledge", description="Knowledge Plane: build and query governed knowledge.")
    sub = root.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return root


def main(argv: list[str] | None = None) -> int:
    from knowledge_plane.cli.output import fail
    from knowledge_plane.settings import Settings

    args = parser().parse_args(argv)
    try:
        args.settings = Settings()
    except ValueError as exc:  # a variable is wrong: the error names it
        return fail(str(exc), getattr(args, "json", False))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
