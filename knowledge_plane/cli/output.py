"""Shared output of the ``knowledge`` commands.

With ``--json`` a command prints one JSON document on stdout and nothing else there (see
``json_document``); otherwise readable text, whose tables are rich tables on a terminal and plain
aligned columns when piped (stable for ``grep``/``awk``, never wrapped to a guessed width). Errors are
one line on stderr, red on a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from contextvars import ContextVar
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# The real stdout while a --json command runs with sys.stdout pointed at stderr (json_document).
_document_stream: ContextVar[TextIO | None] = ContextVar("document_stream", default=None)


def _stdout() -> TextIO:
    return _document_stream.get() or sys.stdout


@contextmanager
def json_document() -> Iterator[None]:
    """Run a --json command: what anything else prints on stdout meanwhile (a library's ``print``, a
    stray log handler) goes to stderr, so stdout holds the command's JSON alone and parses as is."""
    token = _document_stream.set(sys.stdout)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _document_stream.reset(token)


def quiet_progress_bars() -> None:
    """Machine output (--json) is quiet on both streams: no progress bar from the model libraries
    (transformers' "Loading weights", huggingface_hub's). Their switch is process-wide state that
    transformers copies when it is imported, so it is set on both, whichever was imported first."""
    try:
        from huggingface_hub.utils import disable_progress_bars
    except ImportError:  # no model library in this install: nothing could draw a bar
        return
    disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


def emit(as_json: bool, data: Any, render: Callable[[Any], str]) -> None:
    out = _stdout()
    if as_json:
        json.dump(data, out, indent=2, ensure_ascii=False, default=str)
        out.write("\n")
    else:
        out.write(render(data).rstrip("\n") + "\n")
    out.flush()  # a long-running command (serve, console) says where it listens before it blocks


def emit_line(data: dict[str, Any]) -> None:
    """One compact JSON line, flushed: for a long-running command whose supervisor reads it at once."""
    out = _stdout()
    json.dump(data, out)
    out.write("\n")
    out.flush()


def fail(message: str, as_json: bool = False, code: int = 1) -> int:
    """Report an error on stderr (and as JSON on stdout with --json) and return the exit code."""
    if as_json:
        out = _stdout()
        json.dump({"error": message}, out, ensure_ascii=False)
        out.write("\n")
    error_line(f"error: {message}")
    return code


def error_line(line: str) -> None:
    """One line on stderr: red on a terminal, never wrapped (a long path stays greppable)."""
    if sys.stderr.isatty():
        Console(stderr=True, highlight=False).print(Text(line, style="red"), soft_wrap=True)
    else:
        sys.stderr.write(line + "\n")


def table(rows: list[list[Any]], header: list[str]) -> str:
    """The rows as text: a rich table fitted to the terminal when stdout is one, else plain columns
    separated by two spaces with a dashed line under the header."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    out = _stdout()
    if not out.isatty():
        return _plain_table(cells, header)
    console = Console(file=out, highlight=False)
    grid = Table(*header, box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for row in cells:
        grid.add_row(*(Text(v) for v in row))  # Text: a value like "[draft]" is not read as markup
    with console.capture() as captured:
        console.print(grid)
    return captured.get()


def _plain_table(cells: list[list[str]], header: list[str]) -> str:
    lines = [header, *cells]
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    text = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
