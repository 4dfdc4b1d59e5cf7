"""Asset metadata a data engineer reads in the Dagster UI: typed tables (sortable there), rates, previews.

Every figure is one namespace's: each partition's materialization carries its own (assets/stage.py).
The per-namespace report of ``knowledge build`` reads the same metadata back (jobs/report.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from knowledge_plane.build.records import ParsedRecord, RawRecord, StageRecord

Columns = dict[str, str]  # column name → Dagster table type ("string", "int", "float", "bool")

QUARANTINE_COLUMNS: Columns = {"path": "string", "reason": "string", "detail": "string", "stage": "string"}


def _cell(value: Any) -> str | int | float | bool | None:
    """A table cell: scalars as they are, lists joined, mappings as compact JSON."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, Iterable):
        return ", ".join(str(v) for v in value)
    return str(value)


def _field(row: Mapping[str, Any] | StageRecord, name: str) -> Any:
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def table(rows: Iterable[Mapping[str, Any] | StageRecord], columns: Columns) -> dg.MetadataValue:
    """A ``dg.MetadataValue.table`` with a schema, one record per row (a mapping or a stage record), the
    columns in the given order."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns.items()])
    records = [dg.TableRecord({name: _cell(_field(row, name)) for name in columns}) for row in rows]
    return dg.MetadataValue.table(records, schema=schema)


def quarantine_table(record: RawRecord | ParsedRecord) -> dg.MetadataValue:
    """The files of one namespace that were refused, with the reason."""
    return table(record.quarantined, QUARANTINE_COLUMNS)


def per_second(count: int | float, seconds: float) -> float | None:
    """A rate for the UI; None when nothing was done or no time was measured."""
    return round(count / seconds, 1) if count and seconds > 0 else None


def preview(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
