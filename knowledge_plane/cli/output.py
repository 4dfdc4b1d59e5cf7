"""Shared output helpers: every command prints JSON with --json, readable text otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def emit(as_json: bool, data: Any, render: Callable[[Any], str]) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(data).rstrip("\n") + "\n")


def fail(message: str, as_json: bool = False, code: int = 1) -> int:
    """Report an error on stderr (and as JSON on stdout with --json) and return the exit code."""
    if as_json:
        json.dump({"error": message}, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    sys.stderr.write(f"error: {message}\n")
    return code


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
