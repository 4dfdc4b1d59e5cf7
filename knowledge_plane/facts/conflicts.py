"""Conflict rules between two facts of the same tenant, subject and predicate (pure functions).

- CONTRADICTS: validity overlaps, same start, values differ beyond the fact type's tolerance.
- OVERRIDES:   validity overlaps and the newer fact (later valid_from) says something else.
- DUPLICATES:  same value (within tolerance) from different source documents, validity overlaps.
- OUTDATED:    an older fact is still open-ended while a newer fact with another value is approved.

A CONTRADICTS of a critical fact type is critical — unless either fact's confidence is below
``low_confidence`` (rules.yaml): such a fact is only a proposal and never blocks a promotion.

Facts never relate across tenants or keys: callers only ever pass facts that share both, and
``classify`` checks it so a wrong caller gets nothing rather than a false conflict.
"""

from __future__ import annotations

from collections.abc import Iterable

from knowledge_plane.facts.config import Rules, load_rules
from knowledge_plane.facts.model import (
    APPROVED,
    CONTRADICTS,
    DUPLICATES,
    OUTDATED,
    OVERRIDES,
    REJECTED,
    Fact,
    Relation,
)
from knowledge_plane.facts.temporal import overlaps, starts_before


def classify(a: Fact, b: Fact, rules: Rules | None = None) -> list[Relation]:
    """Every relation that holds between two facts; empty when they are compatible or unrelated."""
    rules = rules or load_rules()
    if (a.id == b.id or a.tenant_id != b.tenant_id or a.subject_key != b.subject_key
            or a.predicate_key != b.predicate_key or REJECTED in (a.status, b.status)):
        return []
    fact_type = a.fact_type if a.fact_type == b.fact_type else _stricter(a.fact_type, b.fact_type, rules)
    same, diff_pct = rules.compare(a.value, a.unit, b.value, b.unit, fact_type)
    overlap = overlaps(a.valid_from, a.valid_until, b.valid_from, b.valid_until)
    low, high = sorted((a, b), key=lambda f: f.id)
    if starts_before(a.valid_from, b.valid_from):
        older, newer = a, b
    elif starts_before(b.valid_from, a.valid_from):
        older, newer = b, a
    else:
        older = newer = None

    def relation(kind: str, source: Fact, target: Fact) -> Relation:
        severity = rules.severity(kind, fact_type, diff_pct)
        if severity == "critical" and min(a.confidence, b.confidence) < rules.low_confidence:
            severity = "high"  # a low-confidence reading is a proposal: it never holds back a promotion
        return Relation(a.tenant_id, kind, source.id, target.id, severity, diff_pct)

    found: list[Relation] = []
    if same:
        if overlap and a.source_document != b.source_document:
            found.append(relation(DUPLICATES, low, high))
        return found
    if overlap:
        if older is None:
            found.append(relation(CONTRADICTS, low, high))
        else:
            found.append(relation(OVERRIDES, newer, older))
    if older is not None and newer is not None and older.valid_until is None and newer.status == APPROVED:
        found.append(relation(OUTDATED, older, newer))
    return found


def _stricter(type_a: str, type_b: str, rules: Rules) -> str:
    """Facts typed differently compare with the critical type, else the tighter tolerance."""
    for fact_type in (type_a, type_b):
        if fact_type in rules.critical_fact_types:
            return fact_type
    ta, tb = rules.tolerance(type_a), rules.tolerance(type_b)
    return type_a if (ta.relative, ta.absolute) <= (tb.relative, tb.absolute) else type_b


def detect(new: Fact, existing: Iterable[Fact], rules: Rules | None = None) -> list[Relation]:
    """Relations between one fact and the facts already held for its key."""
    rules = rules or load_rules()
    return [r for other in existing for r in classify(new, other, rules)]
