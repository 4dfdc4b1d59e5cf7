"""Immutable index versions on disk: manifest.json + vectors.npy (memory-mappable) + payloads.jsonl.

A version is written into a temporary folder and renamed into place, so a reader never sees a
half-written version; its manifest is the record of what went into it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_plane.domain.ids import namespace_slug, sha256_hex
from knowledge_plane.storage.processes import tmp_path

MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
PAYLOADS = "payloads.jsonl"
FACTS = "facts.jsonl"  # the namespace's approved facts when the version was built
RELEVANCE = "relevance.npy"  # optional: the passages' vectors of the gate's relevance model (serving/relevance.py)
# Bump when the files of a version or what goes into them change: the Dagster UI then marks
# index_versions (and index_aliases below it) stale (the asset's code_version).
INDEX_FORMAT_VERSION = "index-2"  # 2: relevance.npy


def version_dir(indexes_dir: Path, tenant_id: str, namespace: str, version: str) -> Path:
    return indexes_dir / tenant_id / namespace_slug(namespace) / version


def fingerprint(
    model: str, dimension: int, payloads: list[dict[str, Any]], vectors_key: list[str], facts: list[dict] = ()
) -> str:
    """Identity of a version's content: same payloads, embedded texts, model and approved facts → same value."""
    body = json.dumps(
        [model, dimension, vectors_key, payloads, list(facts)], sort_keys=True, ensure_ascii=False, default=str
    )
    return sha256_hex(body)


def new_version_id(fp: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"v{now:%Y%m%d-%H%M%S}-{fp[:6]}"


def write_version(
    target: Path,
    manifest: dict[str, Any],
    vectors: np.ndarray,
    payloads: list[dict[str, Any]],
    facts: list[dict[str, Any]] | None = None,
    finish: Callable[[Path], object] | None = None,
    relevance: np.ndarray | None = None,
) -> Path:
    """Write a version into place atomically; ``finish`` adds derived files before it becomes visible."""
    if target.exists():
        raise FileExistsError(f"index version {target} already exists; versions are immutable")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(target)  # a killed writer's leftover is removed by the next build (storage/processes.py)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    np.save(tmp / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
    if relevance is not None:
        np.save(tmp / RELEVANCE, np.ascontiguousarray(relevance, dtype=np.float32))
    for name, rows in ((PAYLOADS, payloads), (FACTS, facts or [])):
        with open(tmp / name, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    if finish is not None:
        finish(tmp)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    try:
        os.replace(tmp, target)  # atomic; fails, never merges, when another writer got there first
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if target.exists():
            raise FileExistsError(f"index version {target} already exists; versions are immutable") from exc
        raise
    return target


@dataclass
class IndexVersion:
    path: Path
    manifest: dict[str, Any]
    vectors: np.ndarray  # a read-only memory map
    payloads: list[dict[str, Any]]
    relevance: np.ndarray | None = None  # a read-only memory map, when the version has relevance vectors

    @property
    def name(self) -> str:
        return f"{self.manifest['namespace']}@{self.manifest['version']}"


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / MANIFEST).read_text(encoding="utf-8"))


def read_version(path: Path) -> IndexVersion:
    manifest = read_manifest(path)
    vectors = np.load(path / VECTORS, mmap_mode="r")
    with open(path / PAYLOADS, encoding="utf-8") as fh:
        payloads = [json.loads(line) for line in fh if line.strip()]
    if len(payloads) != vectors.shape[0]:
        raise ValueError(f"{path}: {len(payloads)} payloads for {vectors.shape[0]} vectors")
    return IndexVersion(path, manifest, vectors, payloads, read_relevance(path, vectors.shape[0]))


def read_relevance(path: Path, rows: int) -> np.ndarray | None:
    """The version's relevance vectors (a memory map), None when it has none; one row per vector."""
    if not (path / RELEVANCE).is_file():
        return None
    relevance = np.load(path / RELEVANCE, mmap_mode="r")
    if relevance.ndim != 2 or relevance.shape[0] != rows:
        raise ValueError(f"{path}: {RELEVANCE} has shape {relevance.shape} for {rows} vectors")
    return relevance


def read_facts(path: Path) -> list[dict[str, Any]]:
    """The approved-facts snapshot a version carries (empty for versions built before facts)."""
    target = path / FACTS
    if not target.is_file():
        return []
    with open(target, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def delete_version(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
