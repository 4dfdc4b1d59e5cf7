"""Markdown tables and previews for asset metadata: what a data engineer reads in the Dagster UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from knowledge_plane.build.records import ParsedRecord, RawRecord


def md_table(rows: list[dict[str, Any]], columns: list[str]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("_none_")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def quarantine_table(records: Sequence[RawRecord | ParsedRecord]) -> dg.MetadataValue:
    rows = [{"namespace": r.namespace, **q} for r in records for q in r.quarantined]
    return md_table(rows, ["namespace", "path", "reason", "detail", "stage"])


def preview(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
