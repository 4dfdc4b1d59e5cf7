"""Entry point of ``knowledge``: each command group lives in its own module with a register()."""

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
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
