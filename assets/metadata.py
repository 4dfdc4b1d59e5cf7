"""Asset metadata a data engineer reads in the Dagster UI: typed tables (sortable there), totals, previews.

The column lists are module constants because they are also how a run is read back: the per-namespace
report of ``knowledge build`` comes from these tables (jobs/report.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from knowledge_plane.build.records import ParsedRecord, RawRecord, StageRecord

Columns = dict[str, str]  # column name → Dagster table type ("string", "int", "float", "bool")

QUARANTINE_COLUMNS: Columns = {
    "namespace": "string", "path": "string", "reason": "string", "detail": "string", "stage": "string",
}


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


def quarantine_table(records: Sequence[RawRecord | ParsedRecord]) -> dg.MetadataValue:
    return table(({"namespace": r.namespace, **q} for r in records for q in r.quarantined),
                 QUARANTINE_COLUMNS)


def total(records: Iterable[StageRecord], field: str) -> int | float:
    """The sum of one figure over the namespaces of the run."""
    return sum(getattr(r, field) for r in records)


def per_second(count: int | float, seconds: float) -> float | None:
    """A rate for the UI; None when nothing was done or no time was measured."""
    return round(count / seconds, 1) if count and seconds > 0 else None


def preview(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
