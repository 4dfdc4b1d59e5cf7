"""Jinja2 filters that build markup: a highlighted value in a passage, and a timeline drawn as SVG.

Both escape every piece of text they place (the text comes from documents), and return Markup so
the template's autoescape does not escape the tags they add.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from markupsafe import Markup, escape

from knowledge_plane.console.insight import STATUS_COLOURS

FACT_COLOURS = {"approved": STATUS_COLOURS["success"], "proposed": "#1565c0", "conflicted": "#ef6c00",
                "rejected": "#9e9e9e"}


def highlight(text: str, value: str | None) -> Markup:
    """The passage with each occurrence of the fact's value in <mark>: case, the decimal separator and
    spaces may differ from the text (the stored value is normalised: "99.7 %" for "99,7%")."""
    if not value or not value.strip():
        return escape(text)
    pattern = re.escape(value.strip()).replace(",", r"\.").replace(r"\.", "[.,]").replace(r"\ ", r"\s*")
    parts = re.split(f"({pattern})", text, flags=re.IGNORECASE)
    return Markup("").join(Markup("<mark>{}</mark>").format(p) if i % 2 else escape(p) for i, p in enumerate(parts))


def timeline_svg(entries: list[dict[str, Any]], on: str | None = None, width: int = 900) -> Markup:
    """One bar per fact over its validity (open ends run to the edges), coloured by status; a red rule
    marks the point-in-time day."""
    if not entries:
        return Markup("")
    days = [dt.date.fromisoformat(d) for e in entries for d in (e["valid_from"], e["valid_until"]) if d]
    if on:
        days.append(dt.date.fromisoformat(on))
    start = min(days, default=dt.date.today()) - dt.timedelta(days=30)
    end = max(days, default=dt.date.today()) + dt.timedelta(days=30)
    span = max((end - start).days, 1)
    left, row = 10, 26
    height = row * len(entries) + 30

    def x(day: str | None, default: float) -> float:
        return left + (dt.date.fromisoformat(day) - start).days / span * (width - 2 * left) if day else default

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart timeline" width="{width}" height="{height}" '
             f'role="img" aria-label="validity of each fact">']
    for i, e in enumerate(entries):
        x0, x1 = x(e["valid_from"], left), x(e["valid_until"], width - left)
        y = 10 + i * row
        label = escape(f'{e["object"]} ({e["status"]}) {e["valid_from"] or "…"} → {e["valid_until"] or "…"}')
        parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 2):.1f}" height="18" rx="3" '
                     f'fill="{FACT_COLOURS.get(e["status"], "#607d8b")}"><title>{label}</title></rect>'
                     f'<text x="{x0 + 4:.1f}" y="{y + 13}" font-size="11" fill="#fff">{label}</text>')
    for day in (start + dt.timedelta(days=30), end - dt.timedelta(days=30)):
        parts.append(f'<text x="{x(day.isoformat(), 0) - 30:.1f}" y="{height - 4}" font-size="10">{day}</text>')
    if on:
        xo = x(on, 0)
        parts.append(f'<line x1="{xo:.1f}" y1="0" x2="{xo:.1f}" y2="{height - 16}" stroke="#c62828" '
                     f'stroke-width="2"/><text x="{xo + 3:.1f}" y="{height - 18}" font-size="10" '
                     f'fill="#c62828">{escape(on)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
