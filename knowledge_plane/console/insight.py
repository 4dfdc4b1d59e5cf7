"""Query insight from the query log: rates, latency percentiles, and a daily chart drawn as inline SVG.

The log is read for the chosen period only (indexed on tenant and time); a row's namespaces are the
keys of its ``index_versions`` JSON, so per-namespace figures are computed here rather than in SQL.
The chart is built server-side as SVG elements with escaped labels: no chart library, no script.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import sqlalchemy as sa
from markupsafe import Markup, escape

from knowledge_plane.storage.registry import Registry, query_log

ANSWERED = ("success", "low_confidence")
CLARIFY, REFUSED = "needs_clarification", "refused"
CLARIFY_ALERT = 0.15  # the source design alerts when more than 15 % of questions need clarification
STATUS_COLOURS = {"success": "#2e7d32", "low_confidence": "#9e9d24", "needs_clarification": "#ef6c00",
                  "refused": "#c62828", "redirect": "#5c6bc0"}


def _figures(rows: list[Any]) -> dict[str, Any]:
    statuses = Counter(r.status for r in rows)
    latencies = np.array([r.latency_ms for r in rows], dtype=float)
    total = len(rows)
    return {
        "queries": total,
        "answer_rate": sum(statuses[s] for s in ANSWERED) / total if total else 0.0,
        "clarification_rate": statuses[CLARIFY] / total if total else 0.0,
        "refusals": statuses[REFUSED],
        "p50_ms": float(np.percentile(latencies, 50)) if total else 0.0,
        "p95_ms": float(np.percentile(latencies, 95)) if total else 0.0,
        "statuses": dict(statuses),
    }


def insight(registry: Registry, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """Overall, per-namespace and per-caller-app figures and daily status counts for [since, until)."""
    query = sa.select(query_log.c.at, query_log.c.caller_app, query_log.c.status, query_log.c.latency_ms,
                      query_log.c.index_versions, query_log.c.question_sha256).where(
        query_log.c.tenant_id == registry.tenant_id, query_log.c.at >= since, query_log.c.at < until)
    with registry.engine.connect() as db:
        rows = db.execute(query).all()
    by_namespace: dict[str, list[Any]] = defaultdict(list)
    by_app: dict[str, list[Any]] = defaultdict(list)
    daily: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        for namespace in json.loads(row.index_versions or "{}") or {"(none)": None}:
            by_namespace[namespace].append(row)
        by_app[row.caller_app].append(row)
        daily[row.at.date().isoformat()][row.status] += 1
    unanswered = Counter(r.question_sha256 for r in rows if r.status not in ANSWERED)
    days = [(since.date() + dt.timedelta(days=i)).isoformat() for i in range((until.date() - since.date()).days + 1)]
    overall = _figures(rows)
    return {
        "since": since, "until": until, "overall": overall,
        "clarification_alert": overall["queries"] > 0 and overall["clarification_rate"] > CLARIFY_ALERT,
        "namespaces": {ns: _figures(r) for ns, r in sorted(by_namespace.items())},
        "caller_apps": {app: _figures(r) for app, r in sorted(by_app.items())},
        "unanswered": unanswered.most_common(10),
        "chart": daily_chart(days, daily),
    }


def daily_chart(days: list[str], daily: dict[str, Counter], width: int = 720, height: int = 220) -> Markup:
    """Stacked bars of queries per day by status, with a legend; an SVG string safe to embed."""
    left, bottom, top = 40, 30, 10
    peak = max((sum(c.values()) for c in daily.values()), default=0) or 1
    slot = (width - left - 10) / max(len(days), 1)
    scale = (height - bottom - top) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="queries per day by status" '
             f'width="{width}" height="{height + 20}" class="chart">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#888"/>',
             f'<text x="4" y="{top + 10}" font-size="11">{peak}</text>']
    for i, day in enumerate(days):
        x, y = left + i * slot + 2, height - bottom
        for status, colour in STATUS_COLOURS.items():
            count = daily.get(day, Counter())[status]
            if not count:
                continue
            h = count * scale
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(slot - 4, 1):.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(day)} {escape(status)}: {count}</title></rect>')
        if len(days) <= 14 or i % max(len(days) // 10, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" font-size="10">{escape(day[5:])}</text>')
    for i, (status, colour) in enumerate(STATUS_COLOURS.items()):
        parts.append(f'<rect x="{left + i * 135}" y="{height + 2}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + i * 135 + 14}" y="{height + 11}" font-size="11">{escape(status)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
