"""Per-namespace sizing of the production vector stores' collections: shards, replicas, write consistency.

One setting, ``KNOWLEDGE_VECTOR_COLLECTIONS``, holds entries separated by ``;``, each a namespace or a
pattern (``knowledge:*``, ``*``) and its options separated by ``,``::

    knowledge:*=shards:2,replicas:2,write_consistency:quorum;knowledge:runbooks=shards:1

A namespace takes its exact entry, else the longest matching pattern (as the score thresholds do),
else nothing: the collection is created with the store's defaults, as before this setting existed.
The options map to the stores' own parameters (checked against qdrant-client 1.20 and
weaviate-client 4.24):

========================  ==================================  =========================================
option                    Qdrant ``create_collection``        Weaviate ``collections.create``
========================  ==================================  =========================================
``shards:N``              ``shard_number=N``                  ``Configure.sharding(desired_count=N)``
``replicas:N``            ``replication_factor=N``            ``Configure.replication(factor=N)``
``write_consistency:W``   ``write_consistency_factor``        writes sent ``with_consistency_level``
========================  ==================================  =========================================

``W`` is ``one``, ``quorum`` (more than half the replicas), ``all``, or a number of replicas from 1
to ``replicas``. Qdrant takes the number of acknowledgements; Weaviate only knows ONE, QUORUM and
ALL, so a number becomes the smallest of those that waits for at least that many replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from knowledge_plane.domain.ids import namespace_entry

LEVELS = ("one", "quorum", "all")
SYNTAX = "'namespace=shards:N,replicas:N,write_consistency:one|quorum|all|N', entries separated by ';'"


@dataclass(frozen=True)
class CollectionSizing:
    """What one namespace's collections are created with; None leaves the store's default."""

    shards: int | None = None
    replicas: int | None = None
    write_consistency: str | int | None = None  # one of LEVELS, or a number of replicas

    def write_factor(self) -> int | None:
        """Replicas that must acknowledge a write (Qdrant's ``write_consistency_factor``)."""
        replicas = self.replicas or 1  # the stores' default replication
        if self.write_consistency is None or isinstance(self.write_consistency, int):
            return self.write_consistency
        return {"one": 1, "quorum": replicas // 2 + 1, "all": replicas}[self.write_consistency]

    def write_level(self) -> str | None:
        """Weaviate's consistency level of writes: ONE, QUORUM or ALL (the least that meets the factor)."""
        factor = self.write_factor()
        if factor is None:
            return None
        replicas = self.replicas or 1
        if factor == 1:
            return "ONE"
        return "QUORUM" if factor <= replicas // 2 + 1 else "ALL"


def _positive(item: str, key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"invalid collection settings {item!r}: {key} must be a whole number ≥ 1, got {value!r}")
    return number


def _sizing(item: str, options: str) -> CollectionSizing:
    values: dict[str, str] = {}
    for raw in options.split(","):
        key, sep, value = (part.strip() for part in raw.partition(":"))
        if key not in ("shards", "replicas", "write_consistency"):
            raise ValueError(f"invalid collection settings {item!r}: unknown option {key!r} "
                             "(known: shards, replicas, write_consistency)")
        if not sep or not value:
            raise ValueError(f"invalid collection settings {item!r}: option {key!r} has no value ('{key}:…')")
        if key in values:
            raise ValueError(f"invalid collection settings {item!r}: {key} is given twice")
        values[key] = value
    shards = _positive(item, "shards", values["shards"]) if "shards" in values else None
    replicas = _positive(item, "replicas", values["replicas"]) if "replicas" in values else None
    consistency: str | int | None = None
    if "write_consistency" in values:
        raw_level = values["write_consistency"].lower()
        consistency = raw_level if raw_level in LEVELS else _positive(item, "write_consistency", raw_level)
        if isinstance(consistency, int) and consistency > (replicas or 1):
            raise ValueError(f"invalid collection settings {item!r}: write_consistency {consistency} exceeds the "
                             f"{replicas or 1} replica(s) a write can reach (set replicas:N)")
    return CollectionSizing(shards, replicas, consistency)


def parse_collection_sizing(value: str | None) -> dict[str, CollectionSizing]:
    """``"knowledge:*=shards:2,replicas:2;…"`` as {namespace or pattern: sizing}; a bad entry is an error."""
    out: dict[str, CollectionSizing] = {}
    for raw in (value or "").split(";"):
        item = raw.strip()
        if not item:
            continue
        pattern, sep, options = (part.strip() for part in item.partition("="))
        if not sep or not pattern or not options:
            raise ValueError(f"invalid collection settings {item!r}: expected {SYNTAX}")
        if pattern in out:
            raise ValueError(f"invalid collection settings {item!r}: {pattern!r} is given twice")
        out[pattern] = _sizing(item, options)
    return out


def sizing_for(table: Mapping[str, CollectionSizing], namespace: str) -> CollectionSizing:
    """The namespace's entry, else the longest matching pattern, else the stores' defaults."""
    entry = namespace_entry(table, namespace)
    return table[entry] if entry is not None else CollectionSizing()
