"""Where one run's stages keep their records: ``stages/<tenant>/<run id>/<stage>/<namespace slug>``.

Records are scoped by run, so two runs building the same namespace never read or overwrite each
other's: a stage reads the record its own run's earlier stage wrote, or gets ``StageMissing``. A
Dagster re-execution (from failure, or of a few steps) is a new run whose earlier steps ran in the
run it re-executes: it reads those from its ``lineage`` (parent, then root run), never from any
other run. The content caches (parse, chunk, embedding) are keyed by content and stay shared.

A record is a JSON file (``<slug>.json``). A record with a table field (``StageRecord.TABLE``: the
chunks) keeps its rows in an uncompressed Arrow IPC file beside it (``<slug>.arrow``), written first,
so the JSON appearing is what makes the record complete. Arrow because it loads faster than JSON at
the same memory for every row, and lets a stage read only the columns it needs, memory-mapped
(``bench/stage_records.py``, 100k chunks: all rows 0.57 s vs 0.98 s for JSON at 640 MB either way;
the three columns the embedding stage reads 0.16 s and 278 MB).

Old runs are pruned per namespace when a run starts on it (``prune``): the records of the newest
``KEEP_RUNS`` runs of the namespace are kept, for the CLI report, the console and post-mortems.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.feather as feather
from pydantic import ValidationError

from knowledge_plane.build.records import FORMAT_VERSION, AliasRecord, StageRecord
from knowledge_plane.domain.ids import namespace_slug
from knowledge_plane.storage.processes import tmp_path

R = TypeVar("R", bound=StageRecord)

KEEP_RUNS = 5
# A run older than the KEEP_RUNS newest of a namespace is pruned once it has finished (it wrote
# index_aliases) or has been silent for this long (it failed or was killed): a slow run still
# going is never pulled from under its own later stages.
ABANDONED_AFTER_SECONDS = 24 * 3600


class StageMissing(RuntimeError):
    """A stage ran before the one it reads from, in this run."""


class RecordFormatError(StageMissing):
    """A record written in another format version than this code reads."""


class StageStore:
    """The records of one run (``run_id``) of one tenant, under ``root`` (``$KNOWLEDGE_DATA_DIR/stages``);
    ``lineage``: the runs it re-executes, nearest first."""

    def __init__(self, root: Path, tenant_id: str, run_id: str, lineage: tuple[str, ...] = ()):
        self.root = root / tenant_id
        self.run_id = run_id
        self.lineage = lineage

    def path(self, model: type[StageRecord], namespace: str, run_id: str | None = None) -> Path:
        """The JSON file of the record of ``model`` for ``namespace`` by this run (or by ``run_id``)."""
        return self.root / (run_id or self.run_id) / model.STAGE / f"{namespace_slug(namespace)}.json"

    def write(self, record: R) -> R:
        """Store ``record`` as this run's (atomically: a reader sees no record or the whole of it)."""
        record = record.model_copy(update={"run_id": self.run_id})
        path = self.path(type(record), record.namespace)
        path.parent.mkdir(parents=True, exist_ok=True)
        exclude = set()
        if record.TABLE:
            exclude.add(record.TABLE)
            arrow = path.with_suffix(".arrow")
            tmp = tmp_path(arrow)
            feather.write_feather(pa.Table.from_pylist(getattr(record, record.TABLE)), tmp,
                                  compression="uncompressed")
            tmp.replace(arrow)
        tmp = tmp_path(path)
        tmp.write_text(record.model_dump_json(exclude=exclude), encoding="utf-8")
        tmp.replace(path)
        return record

    def read(self, model: type[R], namespace: str, columns: list[str] | None = None) -> R:
        """This run's record of ``model`` for ``namespace``; ``columns`` narrows a table's rows to
        those fields (the others are not read from disk)."""
        return self.read_run(model, namespace, self._owner(model, namespace), columns)

    def rows(self, model: type[StageRecord], namespace: str, columns: list[str]) -> list[dict]:
        """Only the table rows of this run's record, with only ``columns``: what a stage that needs
        three fields of every chunk reads instead of the whole record."""
        path = self.path(model, namespace, self._owner(model, namespace))
        _validate(model, path)  # the JSON beside the table is small: a record of another format is refused
        return _table_rows(path.with_suffix(".arrow"), columns)

    def _owner(self, model: type[StageRecord], namespace: str) -> str:
        """This run, or the nearest run of its lineage, that wrote the record (StageMissing if none)."""
        for run_id in (self.run_id, *self.lineage):
            if self.path(model, namespace, run_id).is_file():
                return run_id
        raise StageMissing(f"{model.STAGE} for {namespace} was not materialized by run {self.run_id}")

    def read_run(self, model: type[R], namespace: str, run_id: str, columns: list[str] | None = None) -> R:
        """The record of ``model`` for ``namespace`` written by ``run_id``. Stages read their own run's
        (``read``); readers outside a run, such as the console, name the run ``latest_run`` found."""
        path = self.path(model, namespace, run_id)
        if not path.is_file():
            raise StageMissing(f"{model.STAGE} for {namespace} was not materialized by run {run_id}")
        record = _validate(model, path)
        if model.TABLE:
            setattr(record, model.TABLE, _table_rows(path.with_suffix(".arrow"), columns))
        return record

    def latest_run(self, model: type[StageRecord], namespace: str) -> str | None:
        """The kept run that wrote a record of ``model`` for ``namespace`` last (None when none did)."""
        if not self.root.is_dir():
            return None
        found = []
        for run in self.root.iterdir():
            path = self.path(model, namespace, run.name)
            try:
                found.append((path.stat().st_mtime, run.name))
            except FileNotFoundError:
                continue
        return max(found)[1] if found else None

    def prune(self, namespace: str, keep: int = KEEP_RUNS) -> list[str]:
        """Delete this namespace's records of all but its ``keep`` newest runs (never this run's, never a
        run still going); returns the run ids pruned. A run directory left empty is removed."""
        slug = namespace_slug(namespace)
        runs: list[tuple[float, Path, bool]] = []
        if not self.root.is_dir():
            return []
        for run in self.root.iterdir():
            if run.name == self.run_id:
                continue
            try:  # another build may be pruning the same run right now
                written = [p.stat().st_mtime for p in run.glob(f"*/{slug}.*")]
            except FileNotFoundError:
                continue
            if written:
                finished = (run / AliasRecord.STAGE / f"{slug}.json").is_file()
                runs.append((max(written), run, finished))
        runs.sort(reverse=True)
        pruned = []
        now = time.time()
        for last_written, run, finished in runs[max(keep - 1, 0):]:  # this run counts as one of the kept
            if not finished and now - last_written < ABANDONED_AFTER_SECONDS:
                continue
            for path in run.glob(f"*/{slug}.*"):
                path.unlink(missing_ok=True)
            for stage_dir in run.glob("*"):
                _rmdir_if_empty(stage_dir)
            _rmdir_if_empty(run)
            pruned.append(run.name)
        return pruned


def _validate(model: type[R], path: Path) -> R:
    try:
        record = model.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise RecordFormatError(f"{path} is not a {model.__name__} this code can read: {exc}") from exc
    if record.format_version != FORMAT_VERSION:
        raise RecordFormatError(
            f"{path} is a stage record of format {record.format_version}, this code reads {FORMAT_VERSION}"
        )
    return record


def _table_rows(path: Path, columns: list[str] | None) -> list[dict]:
    table = feather.read_table(path, memory_map=True)  # mapped, not read: only the columns used are touched
    if columns is not None:  # a column the rows never had (e.g. no rows at all) is simply absent
        table = table.select([c for c in columns if c in table.column_names])
    return table.to_pylist()


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:  # not empty, or already gone
        pass

