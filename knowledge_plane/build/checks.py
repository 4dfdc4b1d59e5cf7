"""Quality gates an index version must pass before an alias may point to it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_plane.build.secrets import find_secrets, scanner_identity
from knowledge_plane.domain.ids import sha256_hex
from knowledge_plane.storage.processes import tmp_path

NORM_TOLERANCE = 1e-3
# Every gate on an index version, by name, with what it asserts: the one definition the Dagster
# asset checks, the CLI report and the tests use. Each gates a namespace on its own.
CHECKS = {
    "non_empty": "The version holds at least one chunk.",
    "dimension": "Vectors have the embedding model's dimension.",
    "finite_unit_norm": "Every vector is finite and unit-norm.",
    "unique_chunk_ids": "No two chunks share an id.",
    "no_empty_text": "No chunk has empty text.",
    "no_secrets": "No chunk of a knowledge:* namespace contains a secret.",
    "no_critical_conflicts": "No unresolved CONTRADICTS between facts of a critical type (rules.yaml).",
    # knowledge_plane.build.evaluation
    "evaluation": "The namespace's golden questions (knowledge/<domain>/_golden.yaml) are still answered: no "
    "figure below its floor or more than the margin below @latest's.",
    # knowledge_plane.build.data_quality
    "data_quality": "The Great Expectations suites pass on the chunk table (ids unique, text non-empty, within the "
    "word-piece budget, truth level L1-L4, known language) and the facts table (ids unique, dates parseable, "
    "values within their type's bounds); Data Docs in the version's data_docs folder.",
}
CHECK_NAMES = tuple(CHECKS)
# The gate after promotion, one result per namespace: a held-back namespace's partition fails (and the
# run with it, so CI notices) while the sound namespaces are promoted.
HELD_BACK_CHECK = "no_namespace_held_back"
HELD_BACK_DESCRIPTION = (
    "The namespace's checked version reached @latest or was already there. Fails for a namespace held back "
    "by a failed check: its partition fails and the run ends failed (so CI notices), while the other "
    "namespaces of the run are promoted."
)


def conflicts_check(critical: list[dict[str, Any]]) -> CheckResult:
    """The facts gate: an unresolved CONTRADICTS of a critical fact type blocks promotion."""
    described = [
        " vs ".join(f"{f['subject']} / {f['predicate']} = {f['object']} ({f['source']})" for f in c["facts"])
        for c in critical[:3]
    ]
    detail = f"{len(critical)} unresolved critical contradictions" + (f": {'; '.join(described)}" if described else "")
    return CheckResult("no_critical_conflicts", not critical, detail)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A served field's name, the kind of secret found in it and the finding's fingerprint.
PayloadFinding = tuple[str, str, str]


def payload_secrets(payload: dict[str, Any]) -> list[PayloadFinding]:
    """Every secret-looking value in a field of a payload that is served (text, title, heading path,
    location, source path, ids, applications)."""
    found = []
    for name, value in payload.items():
        if isinstance(value, list):
            value = " > ".join(str(v) for v in value)
        if isinstance(value, str) and value:
            found += [(name, f.kind, f.fingerprint) for f in find_secrets(value)]
    return found


class PayloadScanCache:
    """The scans of one namespace's payloads, kept from one build to the next (a JSON file in the
    content cache, keyed by the payload's content and the scanner's identity): a rebuild scans only the
    chunks it has not scanned before — a no-change rebuild none, which was most of its checks' time."""

    def __init__(self, path: Path):
        self.path = path
        self.identity = scanner_identity()
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self._known: dict[str, list[PayloadFinding]] = (
            {k: [tuple(f) for f in v] for k, v in stored.get("scans", {}).items()}
            if stored.get("scanner") == self.identity else {}
        )
        self._used: dict[str, list[PayloadFinding]] = {}

    def __call__(self, payload: dict[str, Any]) -> list[PayloadFinding]:
        key = sha256_hex(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str))
        if key not in self._used:
            self._used[key] = self._known[key] if key in self._known else payload_secrets(payload)
        return self._used[key]

    def save(self) -> None:
        """Keep this build's scans only, so the file follows the namespace instead of growing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(self.path)
        tmp.write_text(json.dumps({"scanner": self.identity, "scans": self._used}), encoding="utf-8")
        tmp.replace(self.path)


def run_checks(
    namespace: str,
    vectors: np.ndarray,
    payloads: list[dict[str, Any]],
    dimension: int,
    allowed: dict[str, set[str]] | None = None,
    scan: Callable[[dict[str, Any]], list[PayloadFinding]] = payload_secrets,
) -> list[CheckResult]:
    """Every gate on one assembled version; ``allowed`` holds, per doc_id, the fingerprints of the
    reviewed findings its document was let through with (the no_secrets check honours them); ``scan``
    finds the secrets of one payload (a ``PayloadScanCache`` remembers them across builds)."""
    results = [CheckResult("non_empty", len(payloads) > 0, f"{len(payloads)} chunks")]
    dim = vectors.shape[1] if vectors.ndim == 2 else -1
    results.append(CheckResult("dimension", dim == dimension, f"vectors have dimension {dim}, the model {dimension}"))
    if vectors.size and dim == dimension:
        norms = np.linalg.norm(vectors, axis=1)
        finite = np.isfinite(vectors).all(axis=1)
        bad = int((~finite | (np.abs(norms - 1.0) > NORM_TOLERANCE)).sum())
        results.append(CheckResult("finite_unit_norm", bad == 0, f"{bad} vectors not finite or not unit-norm"))
    else:
        results.append(CheckResult("finite_unit_norm", vectors.size > 0 and dim == dimension, "no vectors to check"))
    ids = [p["chunk_id"] for p in payloads]
    duplicates = len(ids) - len(set(ids))
    results.append(CheckResult("unique_chunk_ids", duplicates == 0, f"{duplicates} duplicate chunk ids"))
    empty = sum(1 for p in payloads if not str(p.get("text", "")).strip())
    results.append(CheckResult("no_empty_text", empty == 0, f"{empty} chunks with empty text"))
    if namespace.startswith("knowledge:"):
        # The second line of defence: screening quarantined every document holding a secret, so a
        # finding here means a field escaped it.
        allowed = allowed or {}
        leaks = [
            f"{p['source_path']} ({name}: {kind})"
            for p in payloads
            for name, kind, found in scan(p)
            if found not in allowed.get(p["doc_id"], set())
        ]
        detail = f"{len(leaks)} chunks with a secret" + (f": {', '.join(leaks[:5])}" if leaks else "")
        results.append(CheckResult("no_secrets", not leaks, detail))
    else:
        results.append(CheckResult("no_secrets", True, "not required outside knowledge:* namespaces"))
    return results
