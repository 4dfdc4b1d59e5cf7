"""Entry point of ``knowledge``: a click group; each command group lives in its own module with a register()."""

from __future__ import annotations

import importlib
import sys
from functools import cache

import click

from knowledge_plane.cli.commands import CONTEXT_SETTINGS
from knowledge_plane.cli.output import error_line

# Modules that add commands: each exposes register(root: click.Group); a handler returns an exit code.
COMMAND_MODULES = ("knowledge_plane.cli.build", "knowledge_plane.cli.sources", "knowledge_plane.cli.query",
                   "knowledge_plane.cli.facts", "knowledge_plane.cli.db", "knowledge_plane.cli.backups",
                   "knowledge_plane.cli.retention", "knowledge_plane.cli.metrics",
                   "knowledge_plane.console.cli")


@cache
def cli() -> click.Group:
    root = click.Group("knowledge", help="Knowledge Plane: build and query governed knowledge.",
                       context_settings=CONTEXT_SETTINGS)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(root)
    return root


def main(argv: list[str] | None = None) -> int:
    """Run ``knowledge`` with ``argv`` (default: the process's arguments) and return its exit code.

    A usage error (unknown command or option, missing or bad argument) is one line on stderr and
    raises ``SystemExit(2)`` before any command runs, as click and argparse do; ``knowledge`` or a
    command group alone prints its help on stderr the same way.
    """
    try:
        return int(cli().main(args=argv, prog_name="knowledge", standalone_mode=False) or 0)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "knowledge"
        error_line(f"error: {where}: {exc.format_message()} (see '{where} --help')")
        raise SystemExit(exc.exit_code) from None
    except click.Abort as exc:  # click's form of Ctrl-C (and of end of input at a prompt)
        return 130 if isinstance(exc.__context__, KeyboardInterrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
