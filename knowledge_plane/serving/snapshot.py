"""What the query side serves: an immutable snapshot of the versions the @latest aliases point to.

A snapshot is built off to the side, checked (the quarantine checks: the aliased version is
registered and readable, holds vectors of the model's dimension, and is not empty) and only then
handed to readers as one reference; a reader that took the old reference finishes on the old
versions, and they are freed when the last such reader lets go. Versions that did not change
between two snapshots are shared, not reloaded.

With a vector store (``backend``), the versions served are those the store's aliases point to
(for the namespaces that have an @latest in the registry), and the checks read each version's
record in the store instead of the files: complete, same model and dimension, not empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from knowledge_plane.domain.embedding_model import DIMENSION, MODEL_NAME
from knowledge_plane.serving.backend_index import BackendIndex
from knowledge_plane.serving.retrieval import LoadedIndex
from knowledge_plane.storage.index_store import VECTORS, read_facts, read_manifest
from knowledge_plane.storage.registry import LATEST, Registry
from knowledge_plane.storage.vector_backends import VectorBackend

FACTS_FILE = "facts.jsonl"
log = logging.getLogger("knowledge.query")


@dataclass(frozen=True)
class Check:
    """One quarantine check; ``/knowledge/health`` lists them."""

    name: str
    passed: bool
    detail: str
    namespace: str | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Snapshot:
    indexes: Mapping[str, LoadedIndex | BackendIndex]
    loaded_at: float
    # The aliases this snapshot was built for (a failed namespace serves another version or none).
    targets: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    quarantined: frozenset[str] = frozenset()  # aliased namespaces without any servable version

    @property
    def aliases(self) -> dict[str, str]:
        """{namespace: version} served by this snapshot."""
        return {ns: index.version for ns, index in self.indexes.items()}

    @property
    def namespaces(self) -> frozenset[str]:
        """Every published namespace, served or quarantined: what an actor's grant is resolved against."""
        return frozenset(self.indexes) | self.quarantined

    @property
    def stale(self) -> dict[str, str | None]:
        """{namespace: aliased version} for the namespaces served at their last good version instead."""
        return {ns: self.targets[ns] for ns, index in self.indexes.items()
                if ns in self.targets and self.targets[ns] != index.version}

    @property
    def failing(self) -> bool:
        """Some aliased version is not served (stale or quarantined): worth another attempt later."""
        return bool(self.quarantined or self.stale)

    def select(self, namespaces: Iterable[str]) -> list[LoadedIndex | BackendIndex]:
        return [self.indexes[ns] for ns in namespaces if ns in self.indexes]


def current_aliases(registry: Registry, backend: VectorBackend | None = None) -> dict[str, str | None]:
    """{namespace: version served}: the registry's @latest, or with a store what its alias points
    to (None when the store has no alias for a namespace the registry has published)."""
    latest = {ns: names[LATEST] for ns, names in registry.aliases().items() if LATEST in names}
    return latest if backend is None else backend.alias_targets(sorted(latest))


def _read_facts(path: Path) -> list[dict[str, Any]]:
    try:
        return read_facts(path)
    except (OSError, ValueError) as exc:
        log.warning("facts snapshot %s is unreadable, serving without facts: %s", path / FACTS_FILE, exc)
        return []


def _reason(exc: Exception) -> str:
    """What went wrong, without the server's file paths (health details reach API callers); the
    full message with the path goes to the service log."""
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or 'unreadable'}" + (
            f" ({Path(exc.filename).name})" if exc.filename else "")
    return f"{type(exc).__name__}: corrupt or incomplete file"


def _shape_checks(check, dimension: int, found_dims: str, dims_ok: bool, model: str, found_model: str | None,
                  chunks: int) -> list[Check]:
    return [
        check("dimension", dims_ok, f"model dimension {dimension}, {found_dims}"),
        check("model", found_model == model, f"service model {model}, version built with {found_model}"),
        check("not_empty", chunks > 0, f"{chunks} chunks"),
    ]


def _load_from_backend(backend: VectorBackend, namespace: str, version: str | None, model: str,
                       dimension: int) -> tuple[BackendIndex | None, list[Check]]:
    def check(name: str, passed: bool, detail: str) -> Check:
        return Check(name, passed, detail, namespace, version)

    if version is None:
        return None, [check("alias", False, f"{backend.kind} has no alias {backend.alias_name(namespace)}: "
                                            f"publish the namespace with a build using this backend")]
    try:
        info = backend.read_version_info(namespace, version)
    except Exception as exc:  # an unreachable store or a damaged record: not servable
        return None, [check("readable", False, f"cannot read the version record from {backend.kind}: {exc}")]
    collection = f"{backend.kind} collection {backend.collection_name(namespace, version)}"
    if info is None:
        return None, [check("readable", False, f"{collection} has no version record: the publication did not finish")]
    checks = [check("readable", True, collection),
              *_shape_checks(check, dimension, f"collection {info.dimension}", info.dimension == dimension, model,
                             info.model, info.chunks)]
    return (BackendIndex(backend, info) if all(c.passed for c in checks) else None), checks


def _load_one(registry: Registry, namespace: str, version: str, model: str,
              dimension: int) -> tuple[LoadedIndex | None, list[Check]]:
    def check(name: str, passed: bool, detail: str) -> Check:
        return Check(name, passed, detail, namespace, version)

    record = registry.version(namespace, version)
    if record is None or record.version != version:
        return None, [check("registered", False, "the alias points to a version the registry does not know")]
    checks = [check("registered", True, "registered in the registry")]
    path = Path(record.path)
    try:  # the cheap checks first: manifest and the vectors' header, before any payload is parsed
        manifest = read_manifest(path)
        vectors = np.load(path / VECTORS, mmap_mode="r")
    except (OSError, ValueError, KeyError) as exc:
        log.error("%s@%s: cannot read the version at %s: %s", namespace, version, path, exc)
        return None, [*checks, check("readable", False, f"cannot read the version: {_reason(exc)}")]
    manifest_dim = manifest.get("dimension")
    vector_dim = vectors.shape[1] if vectors.ndim == 2 else None
    shape_checks = _shape_checks(check, dimension, f"manifest {manifest_dim}, vectors {vector_dim}",
                                 manifest_dim == dimension and vector_dim == dimension, model, manifest.get("model"),
                                 vectors.shape[0] if vectors.ndim == 2 else 0)
    if not all(c.passed for c in shape_checks):
        return None, [*checks, check("readable", True, "manifest and vectors readable"), *shape_checks]
    try:
        loaded = LoadedIndex.open(path, _read_facts(path), manifest=manifest, vectors=vectors)
    except (OSError, ValueError, KeyError) as exc:
        log.error("%s@%s: cannot read the payloads at %s: %s", namespace, version, path, exc)
        return None, [*checks, check("readable", False, f"cannot read the payloads: {_reason(exc)}"), *shape_checks]
    return loaded, [*checks, check("readable", True, f"{len(loaded)} payloads and vectors {tuple(vectors.shape)}"),
                    *shape_checks]


def load_snapshot(
    registry: Registry,
    aliases: Mapping[str, str | None] | None = None,
    previous: Snapshot | None = None,
    previous_checks: Iterable[Check] = (),
    model: str = MODEL_NAME,
    dimension: int = DIMENSION,
    backend: VectorBackend | None = None,
) -> tuple[Snapshot | None, list[Check]]:
    """Load and check every aliased version, namespace by namespace.

    A namespace whose aliased version fails keeps the version ``previous`` served for it (a
    ``last_good`` check says so) or, without one, is quarantined. None only when no namespace at
    all can be served.
    """
    aliases = current_aliases(registry, backend) if aliases is None else dict(aliases)
    if not aliases:
        return None, [Check("aliases", False, "no @latest alias is published for this tenant yet: run a build")]
    kept_checks = {(c.namespace, c.version): [] for c in previous_checks}
    for c in previous_checks:
        kept_checks[(c.namespace, c.version)].append(c)
    indexes: dict[str, LoadedIndex | BackendIndex] = {}
    quarantined: set[str] = set()
    checks: list[Check] = [Check("aliases", True, f"{len(aliases)} namespaces have an @latest version")]
    for namespace in sorted(aliases):
        version = aliases[namespace]
        reused = previous.indexes.get(namespace) if previous else None
        if reused is not None and reused.version == version:
            indexes[namespace] = reused
            checks.extend(kept_checks.get((namespace, version)) or
                          [Check("readable", True, "unchanged since the previous snapshot", namespace, version)])
            continue
        started = time.perf_counter()
        if backend is None:
            loaded, version_checks = _load_one(registry, namespace, version, model, dimension)
        else:
            loaded, version_checks = _load_from_backend(backend, namespace, version, model, dimension)
        checks.extend(version_checks)
        if loaded is not None:
            indexes[namespace] = loaded
            log.info("loaded %s@%s: %d chunks in %.2fs", namespace, version, len(loaded), time.perf_counter() - started)
        elif reused is not None:
            indexes[namespace] = reused
            checks.append(Check("last_good", True, f"{version} failed its checks: still serving {reused.version}",
                                namespace, reused.version))
            log.error("%s@%s failed its checks: still serving %s", namespace, version, reused.version)
        else:
            quarantined.add(namespace)
            log.error("%s@%s failed its checks and no earlier version was served: namespace quarantined",
                      namespace, version)
    if not indexes:
        return None, checks
    return Snapshot(MappingProxyType(indexes), time.time(), MappingProxyType(aliases), frozenset(quarantined)), checks
