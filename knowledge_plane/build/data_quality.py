"""Data-quality suites: Great Expectations over a candidate version's chunk table and facts table.

The suites are declared once, below (``chunk_suite``, ``fact_suite``): each expectation is a Great
Expectations class name and its arguments, read from the project's own definitions (truth levels
and languages from ``knowledge_plane/domain/documents.py``, the word-piece budget from
``knowledge_plane/domain/embedding_model.py``, fact types and value bounds from
``knowledge_plane/facts/rules.yaml``), so a suite cannot drift from the model it guards.

They run in an ephemeral Great Expectations context over pandas frames of the candidate, before it
is written: no GX project directory, no store on disk. The blocking check ``data_quality`` fails
the namespace when an expectation fails, naming it with its count of unexpected rows; the Data Docs
HTML is rendered into ``<version dir>/data_docs/`` as the version is written (``DataQuality.write_docs``,
called through ``write_version``'s ``finish`` hook, so the pages are there once the version is).

Great Expectations takes seconds to import: it is imported here only, lazily, when the check runs,
and the query service never imports it (an import-linter contract in pyproject.toml). A result and
its Data Docs are kept in the content cache under the candidate's fingerprint (same chunks, same
facts) and the suites' digest (``cached``), so a rebuild of content already checked by these suites
pays neither the import nor the validation — including content an older version holds, whose
result is not thrown away and recomputed at every rebuild.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from knowledge_plane.build.checks import CheckResult
from knowledge_plane.domain.documents import LANGUAGES, TRUTH_LEVELS
from knowledge_plane.domain.embedding_model import MAX_SEQ_TOKENS
from knowledge_plane.facts.config import load_rules

CHECK_NAME = "data_quality"
DATA_DOCS_DIR = "data_docs"
_SITE = "version"
# One table each: the columns the frame is built with (a missing column would fail every
# expectation on it with an error rather than a count).
CHUNK_COLUMNS = ("chunk_id", "doc_id", "text", "n_tokens", "truth_level", "lang", "updated")
FACT_COLUMNS = ("id", "fact_type", "value_type", "number", "valid_from", "valid_until", "approved_at")
_EXAMPLES = 3  # unexpected values quoted per failed expectation in the check's detail


# (Great Expectations class name, its arguments); a "where": (column, value) argument restricts the
# expectation to the rows where that column holds that value (a GX row condition).
Expectation = tuple[str, dict[str, Any]]


def chunk_suite() -> list[Expectation]:
    """What every chunk of a version must satisfy."""
    return [
        ("ExpectColumnValuesToNotBeNull", {"column": "chunk_id"}),
        ("ExpectColumnValuesToBeUnique", {"column": "chunk_id"}),
        ("ExpectColumnValuesToNotBeNull", {"column": "doc_id"}),
        ("ExpectColumnValuesToNotBeNull", {"column": "text"}),
        ("ExpectColumnValuesToMatchRegex", {"column": "text", "regex": r"\S"}),  # not blank
        ("ExpectColumnValuesToNotBeNull", {"column": "n_tokens"}),
        # [CLS] and [SEP] included: a chunk over the budget would be cut off silently by the encoder.
        ("ExpectColumnValuesToBeBetween", {"column": "n_tokens", "min_value": 1, "max_value": MAX_SEQ_TOKENS}),
        ("ExpectColumnValuesToBeInSet", {"column": "truth_level", "value_set": list(TRUTH_LEVELS)}),
        ("ExpectColumnValuesToBeInSet", {"column": "lang", "value_set": list(LANGUAGES)}),
        ("ExpectColumnValuesToBeDateutilParseable", {"column": "updated"}),  # null (unknown) is allowed
    ]


def fact_suite() -> list[Expectation]:
    """What every fact a version carries must satisfy; numeric bounds are those of rules.yaml."""
    rules = load_rules()
    suite: list[Expectation] = [
        ("ExpectColumnValuesToNotBeNull", {"column": "id"}),
        ("ExpectColumnValuesToBeUnique", {"column": "id"}),
        ("ExpectColumnValuesToBeInSet", {"column": "fact_type", "value_set": rules.fact_types}),
        ("ExpectColumnValuesToBeInSet", {"column": "value_type", "value_set": ["number", "text"]}),
        ("ExpectColumnValuesToBeDateutilParseable", {"column": "valid_from"}),
        ("ExpectColumnValuesToBeDateutilParseable", {"column": "valid_until"}),
        ("ExpectColumnValuesToBeDateutilParseable", {"column": "approved_at"}),
    ]
    for fact_type, (low, high) in sorted(rules.value_bounds.items()):
        suite.append(("ExpectColumnValuesToBeBetween", {
            "column": "number", "min_value": low, "max_value": high, "where": ("fact_type", fact_type),
        }))
    return suite


def _text(value: Any) -> str | None:
    """A date as its ISO text (YAML front matter yields date objects), anything else as text."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def chunk_frame(chunks: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(
        [{**{c: chunk.get(c) for c in CHUNK_COLUMNS}, "updated": _text(chunk.get("updated"))} for chunk in chunks],
        columns=list(CHUNK_COLUMNS),
    )


def fact_frame(facts: list[dict[str, Any]]):
    """The facts, a number column holding the numeric values (text facts have none)."""
    import pandas as pd

    rows = [
        {
            "id": f.get("id"), "fact_type": f.get("fact_type"), "value_type": f.get("value_type"),
            "number": float(f["value"]) if f.get("value_type") == "number" and f.get("value") is not None else None,
            **{k: _text(f.get(k)) for k in ("valid_from", "valid_until", "approved_at")},
        }
        for f in facts
    ]
    return pd.DataFrame(rows, columns=list(FACT_COLUMNS)).astype({"number": "float64"})


@lru_cache(maxsize=1)
def _gx():
    import great_expectations as gx  # seconds to import: only when a check runs

    return gx


def _context():
    """An in-memory context: no project directory, no usage statistics, no progress bars."""
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@dataclass
class DataQuality:
    """The check's result, the figures for the record, and the context holding the validation results
    until their Data Docs are written."""

    check: CheckResult
    summary: dict[str, Any] = field(default_factory=dict)
    _context: Any = None
    _docs: Path | None = None  # the Data Docs of the version the result was taken from

    def write_docs(self, directory: Path) -> Path:
        """Render the Data Docs site (index.html and a page per validation) into ``directory``."""
        if self._context is None:
            shutil.copytree(self._docs, directory)
            return directory / "index.html"
        self._context.add_data_docs_site(site_name=_SITE, site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        self._context.build_data_docs(site_names=[_SITE])
        return directory / "index.html"


def suite_digest() -> str:
    """Identity of the suites: a stored result is reused only while they are unchanged."""
    body = json.dumps([_gx_version(), chunk_suite(), fact_suite()], sort_keys=True, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def _gx_version() -> str:
    from importlib.metadata import version  # the installed release, without importing GX

    return version("great-expectations")


def _cache_entry(cache_dir: Path, fingerprint: str) -> Path:
    key = hashlib.sha256(f"{fingerprint}:{suite_digest()}".encode()).hexdigest()
    return cache_dir / CHECK_NAME / key[:2] / key


def cached(cache_dir: Path, fingerprint: str) -> DataQuality | None:
    """The result these suites gave on this content (fingerprint) before, with its Data Docs, if kept."""
    entry = _cache_entry(cache_dir, fingerprint)
    if not (entry / DATA_DOCS_DIR / "index.html").is_file():
        return None
    stored = json.loads((entry / "result.json").read_text(encoding="utf-8"))
    return DataQuality(CheckResult(CHECK_NAME, stored["passed"], stored["detail"]), stored["summary"],
                       _docs=entry / DATA_DOCS_DIR)


def keep(cache_dir: Path, fingerprint: str, quality: DataQuality) -> DataQuality:
    """Store a fresh result and its Data Docs in the cache; returns it read back from there."""
    entry = _cache_entry(cache_dir, fingerprint)
    tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    quality.write_docs(tmp / DATA_DOCS_DIR)
    check = quality.check
    (tmp / "result.json").write_text(json.dumps({"passed": check.passed, "detail": check.detail,
                                                 "summary": quality.summary}), encoding="utf-8")
    try:
        os.replace(tmp, entry)
    except OSError:  # another build kept the same result first: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
    return cached(cache_dir, fingerprint) or quality


def validate(tables: dict[str, tuple[Any, list[Expectation]]], name: str = "candidate") -> DataQuality:
    """Run each table's suite (``{table: (frame, suite)}``); the check fails on any failed expectation."""
    started = time.perf_counter()
    gx = _gx()
    context = _context()
    source = context.data_sources.add_pandas(name)
    failures: list[str] = []
    evaluated = 0
    for table, (frame, expectations) in tables.items():
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
        suite = context.suites.add(gx.ExpectationSuite(name=table))
        for class_name, kwargs in expectations:
            suite.add_expectation(getattr(gx.expectations, class_name)(**_arguments(kwargs)))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=table, data=batch, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=table, validation_definitions=[definition], result_format={"result_format": "SUMMARY"}))
        result = next(iter(checkpoint.run(batch_parameters={"dataframe": frame}).run_results.values()))
        for outcome in result.results:
            evaluated += 1
            if not outcome.success:
                failures.append(f"{table}.{_describe(outcome)}")
    detail = (f"{len(failures)} of {evaluated} expectations failed: " + "; ".join(failures) if failures
              else f"{evaluated} expectations passed")
    summary = {"suite": suite_digest(), "expectations": evaluated, "failed": failures,
               "rows": {table: len(frame) for table, (frame, _) in tables.items()},
               "seconds": round(time.perf_counter() - started, 3)}
    return DataQuality(CheckResult(CHECK_NAME, not failures, detail), summary, context)


def _arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The expectation's arguments, a ``where`` turned into a GX row condition."""
    if "where" not in kwargs:
        return kwargs
    from great_expectations.expectations.row_conditions import Column

    column, value = kwargs["where"]
    return {**{k: v for k, v in kwargs.items() if k != "where"}, "row_condition": Column(column) == value}


def _describe(outcome: Any) -> str:
    """``expect_x(column)``: N unexpected of M (e.g. ...), or the exception GX raised."""
    config = outcome.expectation_config
    column = config.kwargs.get("column")
    condition = config.kwargs.get("row_condition")  # a row condition's dict form, as GX keeps it
    where = f", where {condition['column']['name']}=={condition['parameter']!r}" if condition else ""
    name = f"{config.type}({column}{where})"
    info = outcome.exception_info or {}
    if info.get("raised_exception"):
        return f"{name}: error {info.get('exception_message')}"
    result = outcome.result or {}
    examples = ", ".join(repr(v) for v in (result.get("partial_unexpected_list") or [])[:_EXAMPLES])
    return (f"{name}: {result.get('unexpected_count')} unexpected of {result.get('element_count')}"
            + (f" (e.g. {examples})" if examples else ""))


def data_quality_check(chunks: list[dict[str, Any]], facts: list[dict[str, Any]]) -> DataQuality:
    """The blocking check on a candidate version: its chunks and its approved facts."""
    return validate({"chunks": (chunk_frame(chunks), chunk_suite()), "facts": (fact_frame(facts), fact_suite())})
