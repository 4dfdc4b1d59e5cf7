"""How a ``knowledge`` command is declared: click parameters, and a handler that gets them parsed.

A handler takes the parsed arguments as one namespace (``args.json``, ``args.namespace``…, and the
process's settings as ``args.settings``) and returns the exit code; repeatable options and variadic
arguments arrive as lists (empty when not given).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

import click

from knowledge_plane.cli.output import fail, json_document, quiet_progress_bars
from knowledge_plane.settings import Settings

Handler = Callable[[SimpleNamespace], int]

# -h as well as --help, as argparse had; help wrapped at 100 columns at most.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def command(name: str, handler: Handler, help: str, *params: click.Parameter, **fixed: Any) -> click.Command:
    """A command whose parsed parameters (plus the ``fixed`` values) are passed to ``handler``.

    With ``--json`` the handler runs inside ``json_document``: its JSON alone reaches stdout, and no
    library draws a progress bar on stderr either.
    """

    def callback(**values: Any) -> int:
        args = SimpleNamespace(**fixed, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})
        if values.get("json"):
            quiet_progress_bars()
        with json_document() if values.get("json") else nullcontext():
            try:  # the process's settings, built once per command; a handler reads them as args.settings
                args.settings = Settings()
            except ValueError as exc:  # a variable is wrong: the error names it
                return fail(str(exc), bool(values.get("json")))
            return handler(args)

    return click.Command(name, callback=callback, params=list(params), help=help, short_help=help,
                         context_settings=CONTEXT_SETTINGS)


def group(name: str, help: str, *commands: click.Command) -> click.Group:
    """A command with sub-commands (``knowledge facts …``); one of them must be given."""
    return click.Group(name, commands=list(commands), help=help, short_help=help, context_settings=CONTEXT_SETTINGS)


def json_flag(help: str = "Print JSON.") -> click.Option:
    return click.Option(["--json"], is_flag=True, help=help)

