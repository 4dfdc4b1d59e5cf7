"""Review of facts against the store contract: detect, approve, reject, override, merge, resolve, correct.

Every change goes through here so it is audited the same way on every store: one AuditEntry
per fact or relation touched, with what it was before and after. Conflict relations are opened by
detection and closed by a decision (never deleted), so the history of a conflict stays readable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from knowledge_plane.facts.config import Rules, load_rules
from knowledge_plane.facts.conflicts import classify
from knowledge_plane.facts.model import (
    APPROVED,
    CONFLICTED,
    CONTRADICTS,
    DUPLICATES,
    OPEN,
    OUTDATED,
    OVERRIDES,
    PROPOSED,
    REJECTED,
    RESOLVED,
    TYPE_APPROVED,
    TYPE_PENDING,
    TYPE_REJECTED,
    AuditEntry,
    EntityType,
    Fact,
    Relation,
    fact_uuid,
    value_key,
)
from knowledge_plane.facts.store import FactStore, UnknownFact
from knowledge_plane.facts.temporal import day_before, iso

MIN_PREFIX = 6
RETRACTED = "retracted: "
CORRECTED = "corrected by "
CORRECTION = "correction"  # extraction_method of a fact a reviewer typed in place of a wrong one


class ReviewError(ValueError):
    """A review action that cannot be applied as asked (the message says why and what to do)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def resolve_ids(store: FactStore, tenant_id: str, refs: Iterable[str]) -> list[str]:
    """Full ids for ids or unique prefixes (at least 6 characters); UnknownFact names the bad one."""
    ids = []
    for ref in refs:
        ref = ref.strip()
        if store.get_facts(tenant_id, [ref]):
            ids.append(ref)
            continue
        if len(ref) < MIN_PREFIX:
            raise UnknownFact(f"unknown fact id {ref!r} (give the full id or at least {MIN_PREFIX} characters)")
        matches = store.match_ids(tenant_id, ref, limit=2)
        if not matches:
            raise UnknownFact(f"unknown fact id {ref!r} for tenant {tenant_id!r}")
        if len(matches) > 1:
            raise UnknownFact(f"fact id prefix {ref!r} is ambiguous: {', '.join(matches)}…")
        ids.append(matches[0])
    return ids


def _load(store: FactStore, tenant_id: str, ids: Sequence[str]) -> dict[str, Fact]:
    found = {f.id: f for f in store.get_facts(tenant_id, ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise UnknownFact(f"unknown fact id {missing[0]!r} for tenant {tenant_id!r}")
    return found


def _audit(tenant_id: str, action: str, actor: str, fact: Fact | None = None, relation: Relation | None = None,
           **detail: Any) -> AuditEntry:
    return AuditEntry(tenant_id, action, actor, fact.id if fact else None, relation.id if relation else None, detail)


# -- detection ------------------------------------------------------------------------------
def detect_and_store(store: FactStore, tenant_id: str, facts: Sequence[Fact], actor: str = "extraction",
                     rules: Rules | None = None) -> list[Relation]:
    """Detect the relations of these facts with every fact of their (subject, predicate); store new ones.

    Proposed facts caught in a new CONTRADICTS become ``conflicted``. Returns the new relations.
    """
    rules = rules or load_rules()
    by_key: dict[tuple[str, str], list[Fact]] = defaultdict(list)
    for fact in facts:
        by_key[(fact.subject_key, fact.predicate_key)].append(fact)
    held_by_key: dict[tuple[str, str], dict[str, Fact]] = defaultdict(dict)
    for held in store.facts_for_keys(tenant_id, list(by_key)):  # one round trip per batch of keys
        held_by_key[(held.subject_key, held.predicate_key)][held.id] = held
    found: dict[str, Relation] = {}
    for key, group in by_key.items():
        current = held_by_key[key]
        current.update((f.id, f) for f in group if f.id not in current)
        for fact in group:
            fact = current.get(fact.id, fact)
            for other in current.values():
                for relation in classify(fact, other, rules):
                    found.setdefault(relation.id, relation)
    new = store.add_relations(tenant_id, list(found.values()))
    if not new:
        return []
    entries = [_audit(tenant_id, "conflict_detected", actor, relation=r, kind=r.kind, from_id=r.from_id,
                      to_id=r.to_id, severity=r.severity, value_diff_pct=r.value_diff_pct) for r in new]
    contradicted = {i for r in new if r.kind == CONTRADICTS for i in (r.from_id, r.to_id)}
    if contradicted:
        to_flag = [f for f in store.get_facts(tenant_id, contradicted) if f.status == PROPOSED]
        store.update_facts(tenant_id, {f.id: {"status": CONFLICTED} for f in to_flag})
        entries += [_audit(tenant_id, "status_changed", actor, f, before=PROPOSED, after=CONFLICTED) for f in to_flag]
    store.append_audit(tenant_id, entries)
    return new


def _close_relations(store: FactStore, tenant_id: str, relations: Iterable[Relation], by: str,
                     resolution: str) -> list[Relation]:
    closing = []
    now = _now()
    for relation in relations:
        if relation.status == OPEN:
            relation.status, relation.resolved_at, relation.resolved_by = RESOLVED, now, by
            relation.resolution = resolution
            closing.append(relation)
    if closing:
        store.update_relations(tenant_id, closing)
        store.append_audit(tenant_id, [_audit(tenant_id, "conflict_resolved", by, relation=r, kind=r.kind,
                                              resolution=resolution) for r in closing])
    return closing


def _settle(store: FactStore, tenant_id: str, ids: Iterable[str], by: str, rules: Rules | None = None) -> None:
    """Close open relations of these facts that no longer hold, and give ``conflicted`` facts with no
    open CONTRADICTS left their ``proposed`` status back."""
    rules = rules or load_rules()
    ids = set(ids)
    relations = store.list_relations(tenant_id, fact_ids=ids, status=OPEN)
    involved = ids | {i for r in relations for i in (r.from_id, r.to_id)}
    facts = {f.id: f for f in store.get_facts(tenant_id, involved)}
    stale = []
    for relation in relations:
        a, b = facts.get(relation.from_id), facts.get(relation.to_id)
        if a is None or b is None or relation.id not in {r.id for r in classify(a, b, rules)}:
            stale.append(relation)
    _close_relations(store, tenant_id, stale, by, "no longer applies")
    still_open = {i for r in store.list_relations(tenant_id, fact_ids=involved, kinds=[CONTRADICTS], status=OPEN)
                  for i in (r.from_id, r.to_id)}
    freed = [f for f in facts.values() if f.status == CONFLICTED and f.id not in still_open]
    if freed:
        store.update_facts(tenant_id, {f.id: {"status": PROPOSED} for f in freed})
        store.append_audit(tenant_id, [_audit(tenant_id, "status_changed", by, f, before=CONFLICTED, after=PROPOSED)
                                       for f in freed])


# -- decisions ------------------------------------------------------------------------------
def approve(store: FactStore, tenant_id: str, ids: Sequence[str], by: str, *,
            skip_conflicted: bool = False) -> dict[str, list[str]]:
    """Approve facts. A fact in an open CONTRADICTS is refused (``resolve`` decides between the two)
    or, with ``skip_conflicted``, left out and listed. Returns approved / unchanged / skipped ids."""
    facts = _load(store, tenant_id, ids)
    open_contradictions = defaultdict(list)
    for r in store.list_relations(tenant_id, fact_ids=ids, kinds=[CONTRADICTS], status=OPEN):
        open_contradictions[r.from_id].append(r.to_id)
        open_contradictions[r.to_id].append(r.from_id)
    result: dict[str, list[str]] = {"approved": [], "unchanged": [], "skipped": []}
    for fact_id in ids:
        fact = facts[fact_id]
        if fact.merged_into:
            raise ReviewError(f"fact {fact_id} was merged into {fact.merged_into}: approve that one instead")
        if fact.status == APPROVED:
            result["unchanged"].append(fact_id)
        elif open_contradictions.get(fact_id):
            if not skip_conflicted:
                others = ", ".join(sorted(set(open_contradictions[fact_id])))
                raise ReviewError(f"fact {fact_id} contradicts {others}: run `knowledge facts resolve {fact_id} "
                                  f"--keep <id>` to decide which one holds")
            result["skipped"].append(fact_id)
        else:
            result["approved"].append(fact_id)
    now = _now()
    store.update_facts(tenant_id, {i: {"status": APPROVED, "approved_by": by, "approved_at": now, "reason": None}
                                   for i in result["approved"]})
    store.append_audit(tenant_id, [_audit(tenant_id, "approved", by, facts[i], before=facts[i].status, after=APPROVED)
                                   for i in result["approved"]])
    if result["approved"]:
        approved = store.get_facts(tenant_id, result["approved"])
        detect_and_store(store, tenant_id, approved, actor=by)  # an approved newer fact outdates older ones
    return result


def reject(store: FactStore, tenant_id: str, ids: Sequence[str], reason: str, by: str) -> dict[str, list[str]]:
    """Reject facts with a reason; their open relations are resolved, their counterparts settled."""
    if not reason or not reason.strip():
        raise ReviewError("a rejection needs a reason (--reason)")
    facts = _load(store, tenant_id, ids)
    changing = [i for i in ids if facts[i].status != REJECTED]
    store.update_facts(tenant_id, {i: {"status": REJECTED, "reason": reason.strip()} for i in changing})
    store.append_audit(tenant_id, [_audit(tenant_id, "rejected", by, facts[i], before=facts[i].status, after=REJECTED,
                                          reason=reason.strip()) for i in changing])
    relations = store.list_relations(tenant_id, fact_ids=changing, status=OPEN)
    _close_relations(store, tenant_id, relations, by, f"rejected: {reason.strip()}")
    _settle(store, tenant_id, {i for r in relations for i in (r.from_id, r.to_id)} - set(changing), by)
    return {"rejected": changing, "unchanged": [i for i in ids if i not in changing]}


def override(store: FactStore, tenant_id: str, new_id: str, old_id: str, by: str) -> dict[str, Any]:
    """The newer fact replaces the older from its valid_from: the older one's validity is closed the
    day before, the newer one approved, and relations between the two resolved."""
    facts = _load(store, tenant_id, [new_id, old_id])
    new, old = facts[new_id], facts[old_id]
    _same_key(new, old)
    if new.valid_from is None or (old.valid_from is not None and new.valid_from <= old.valid_from):
        raise ReviewError(f"fact {new_id} (valid from {iso(new.valid_from) or 'always'}) does not start after "
                          f"{old_id} (valid from {iso(old.valid_from) or 'always'}): use `resolve` to keep one of them")
    if REJECTED in (new.status, old.status):
        raise ReviewError("a rejected fact can neither override nor be overridden")
    blocking = [r.other(new_id) for r in store.list_relations(tenant_id, fact_ids=[new_id], kinds=[CONTRADICTS],
                                                              status=OPEN) if r.other(new_id) != old_id]
    if blocking:
        raise ReviewError(f"fact {new_id} contradicts {', '.join(blocking)}: resolve that first")
    close = day_before(new.valid_from)
    result: dict[str, Any] = {"kept": new_id, "closed": None, "valid_until": iso(old.valid_until)}
    if old.valid_until is None or old.valid_until > close:
        store.update_facts(tenant_id, {old_id: {"valid_until": close}})
        store.append_audit(tenant_id, [_audit(tenant_id, "overridden", by, old, by_fact=new_id,
                                              before=iso(old.valid_until), after=iso(close))])
        result.update(closed=old_id, valid_until=iso(close))
    between = [r for r in store.list_relations(tenant_id, fact_ids=[new_id], status=OPEN) if r.other(new_id) == old_id]
    _close_relations(store, tenant_id, between, by, f"override: {new_id} holds from {iso(new.valid_from)}")
    if new.status != APPROVED:
        approve(store, tenant_id, [new_id], by)
    _settle(store, tenant_id, [new_id, old_id], by)
    return result


def merge(store: FactStore, tenant_id: str, keep_id: str, duplicate_ids: Sequence[str], by: str,
          rules: Rules | None = None) -> dict[str, Any]:
    """Fold duplicates (same value) into one fact: they are rejected as ``merged into`` it, and an
    approval any of them had passes to the kept fact."""
    rules = rules or load_rules()
    duplicate_ids = [i for i in duplicate_ids if i != keep_id]
    if not duplicate_ids:
        raise ReviewError("merge needs at least one duplicate besides the fact kept")
    facts = _load(store, tenant_id, [keep_id, *duplicate_ids])
    keep = facts[keep_id]
    for dup_id in duplicate_ids:
        dup = facts[dup_id]
        _same_key(keep, dup)
        same, _ = rules.compare(keep.value, keep.unit, dup.value, dup.unit, keep.fact_type)
        if not same:
            raise ReviewError(f"facts {keep_id} ({keep.object}) and {dup_id} ({dup.object}) do not hold the same "
                              "value: use `resolve` or `override`, not merge")
    reason = f"merged into {keep_id}"
    store.update_facts(tenant_id, {
        i: {"status": REJECTED, "reason": reason, "merged_into": keep_id} for i in duplicate_ids})
    store.update_facts(tenant_id, {keep_id: {"confidence": max(f.confidence for f in facts.values())}})
    store.append_audit(tenant_id, [_audit(tenant_id, "merged", by, facts[i], before=facts[i].status, after=REJECTED,
                                          merged_into=keep_id) for i in duplicate_ids])
    relations = store.list_relations(tenant_id, fact_ids=duplicate_ids, status=OPEN)
    _close_relations(store, tenant_id, relations, by, reason)
    if keep.status != APPROVED and any(facts[i].status == APPROVED for i in duplicate_ids):
        approve(store, tenant_id, [keep_id], by)
    _settle(store, tenant_id, {keep_id} | {r.other(i) for i in duplicate_ids for r in relations}, by, rules)
    return {"kept": keep_id, "merged": duplicate_ids}


def resolve(store: FactStore, tenant_id: str, fact_id: str, keep_id: str, by: str) -> dict[str, Any]:
    """Settle the open conflicts of a fact by keeping one fact: the other side of each relation is
    rejected (CONTRADICTS), overridden or refused (OVERRIDES, OUTDATED) or merged (DUPLICATES), and
    the kept fact is approved."""
    _load(store, tenant_id, [fact_id, keep_id])
    relations = store.list_relations(tenant_id, fact_ids=[fact_id], status=OPEN)
    if keep_id != fact_id:
        relations = [r for r in relations if r.other(fact_id) == keep_id]
    if not relations:
        where = f"between {fact_id} and {keep_id}" if keep_id != fact_id else f"for {fact_id}"
        raise ReviewError(f"no open conflict {where}: `knowledge facts show {fact_id}` lists its relations")
    summary: dict[str, Any] = {"kept": keep_id, "rejected": [], "closed": [], "merged": []}
    for relation in sorted(relations, key=lambda r: (r.kind != CONTRADICTS, r.id)):
        other = relation.other(keep_id)
        other_fact = store.get_facts(tenant_id, [other])[0]
        if other_fact.status == REJECTED:
            continue
        if relation.kind == CONTRADICTS:
            reject(store, tenant_id, [other], f"contradicts {keep_id}; kept {keep_id}", by)
            summary["rejected"].append(other)
        elif relation.kind in (OVERRIDES, OUTDATED):
            newer = relation.from_id if relation.kind == OVERRIDES else relation.to_id
            if keep_id == newer:
                closed = override(store, tenant_id, keep_id, other, by)
                summary["closed"].append(closed["closed"] or other)
            else:
                reject(store, tenant_id, [other], f"kept the earlier fact {keep_id}", by)
                summary["rejected"].append(other)
        elif relation.kind == DUPLICATES:
            merge(store, tenant_id, keep_id, [other], by)
            summary["merged"].append(other)
    keep = store.get_facts(tenant_id, [keep_id])[0]
    if keep.status != APPROVED:
        approve(store, tenant_id, [keep_id], by)
    return summary


def correct(store: FactStore, tenant_id: str, fact_id: str, written: str, reason: str, by: str,
            rules: Rules | None = None) -> dict[str, Any]:
    """Correct a fact's value: a new fact with the value as ``written`` supersedes it.

    A correction is a change in transaction time, not in valid time: the old value was never right,
    so the old fact is rejected (reason ``corrected by <new id>: <reason>``) with its validity left as
    it was, and the new fact takes the same subject, predicate, validity and source (its id is the one
    extraction would give that statement, so a later extraction of the same value finds it), is
    recorded as ``correction`` and approved by the reviewer — unless it contradicts another fact,
    when it waits ``conflicted`` like any other. Both facts get an audit entry naming the other.
    """
    rules = rules or load_rules()
    if not reason or not reason.strip():
        raise ReviewError("a correction needs a reason (what was wrong)")
    text = " ".join(str(written).split())
    if not text:
        raise ReviewError("a correction needs the new value")
    old = _load(store, tenant_id, [fact_id])[fact_id]
    if old.status == REJECTED:
        raise ReviewError(f"fact {fact_id} is rejected ({old.reason}): correct a fact that is still in review or "
                          "approved")
    quantity = rules.quantity(text)
    value, unit = quantity.value, quantity.unit
    if old.value_type == "number":
        if quantity.value_type != "number":
            raise ReviewError(f"fact {fact_id} holds a number ({old.object}); {text!r} is not one")
        if unit is None:  # "45" for "30 jours": the number in the fact's own unit
            unit = old.unit
        elif unit != old.unit and not _same_dimension(rules, unit, old.unit):
            raise ReviewError(f"{text!r} is in {unit}, which does not measure what {old.object} ({old.unit}) does")
    if (value_key(value), unit) == (value_key(old.value), old.unit):
        raise ReviewError(f"fact {fact_id} already holds {old.object}: nothing to correct")
    new_id = fact_uuid(tenant_id, old.source_document, old.subject_key, old.predicate_key, value, old.valid_from)
    if store.get_facts(tenant_id, [new_id]):
        raise ReviewError(f"fact {new_id} already states {text!r} from {old.source}: approve or resolve that one")
    now = _now()
    new = dataclasses.replace(
        old, id=new_id, object=text, value=value, unit=unit, value_type=quantity.value_type,
        extraction_method=CORRECTION, extraction_model=None, prompt_id=None, status=PROPOSED, confidence=1.0,
        created_at=now, updated_at=now, approved_by=None, approved_at=None, reason=None, merged_into=None)
    why = reason.strip()
    # The new fact first: should the store fail in between, the old one is not left rejected in favour
    # of a fact that does not exist. Rejected before conflicts are looked for, so it is not one.
    store.upsert_facts(tenant_id, [new])
    reject(store, tenant_id, [fact_id], f"{CORRECTED}{new_id}: {why}", by)
    store.append_audit(tenant_id, [
        _audit(tenant_id, "corrected", by, old, superseded_by=new_id, before=old.object, after=text, reason=why),
        _audit(tenant_id, "created", by, new, method=CORRECTION, corrects=fact_id, source=new.source, object=text,
               reason=why)])
    detect_and_store(store, tenant_id, [new], actor=by)
    result = approve(store, tenant_id, [new_id], by, skip_conflicted=True)
    status = APPROVED if result["approved"] else CONFLICTED
    return {"corrected": fact_id, "new_id": new_id, "object": text, "status": status}


def _same_dimension(rules: Rules, a: str | None, b: str | None) -> bool:
    da, db = rules.dimension(a), rules.dimension(b)
    return bool(da and db and da[0] == db[0])


def _same_key(a: Fact, b: Fact) -> None:
    if (a.subject_key, a.predicate_key) != (b.subject_key, b.predicate_key):
        raise ReviewError(f"facts {a.id} ({a.subject} / {a.predicate}) and {b.id} ({b.subject} / {b.predicate}) "
                          "are not about the same subject and predicate")


# -- entity types ---------------------------------------------------------------------------
def decide_entity_type(store: FactStore, tenant_id: str, type_name: str, approve_it: bool, by: str) -> EntityType:
    """Approve or reject a registered entity type (a rejected type's facts are ignored from then on)."""
    status = TYPE_APPROVED if approve_it else TYPE_REJECTED
    before = next((t.status for t in store.entity_types(tenant_id) if t.type_name == type_name), None)
    updated = store.set_entity_type_status(tenant_id, type_name, status, by)
    if updated is None:
        known = ", ".join(t.type_name for t in store.entity_types(tenant_id)) or "none registered yet"
        raise ReviewError(f"unknown entity type {type_name!r} (known: {known})")
    store.append_audit(tenant_id, [AuditEntry(tenant_id, f"type_{status}", by, detail={
        "type_name": type_name, "before": before, "after": status})])
    return updated


def create_entity_type(store: FactStore, tenant_id: str, type_name: str, by: str) -> EntityType:
    """Register a type by hand, approved (extraction registers the types it meets as pending)."""
    name = " ".join(str(type_name).split())
    if not name or len(name) > 128:
        raise ReviewError("an entity type needs a name of 1 to 128 characters")
    if any(t.type_name == name for t in store.entity_types(tenant_id)):
        raise ReviewError(f"entity type {name!r} already exists")
    store.register_entity_types(tenant_id, {name: TYPE_PENDING})
    created = store.set_entity_type_status(tenant_id, name, TYPE_APPROVED, by)
    if created is None:  # only if another process deleted it in between
        raise ReviewError(f"entity type {name!r} was removed while it was being created")
    store.append_audit(tenant_id, [AuditEntry(tenant_id, "type_created", by, detail={
        "type_name": name, "after": TYPE_APPROVED})])
    return created


def merge_entity_type(store: FactStore, tenant_id: str, type_name: str, into: str, by: str) -> dict[str, Any]:
    """Merge a type into another: its facts and graph entities take the other type and it leaves the
    registry. Extraction names types from the ontology, so a document naming the merged type later
    registers it again as pending; changing the subjects' type in ontology.yaml is the lasting fix."""
    types = {t.type_name: t for t in store.entity_types(tenant_id)}
    for name in (type_name, into):
        if name not in types:
            known = ", ".join(types) or "none registered yet"
            raise ReviewError(f"unknown entity type {name!r} (known: {known})")
    if type_name == into:
        raise ReviewError("an entity type cannot be merged into itself")
    if types[into].status == TYPE_REJECTED:
        raise ReviewError(f"entity type {into!r} is rejected: merge into an approved or pending type")
    moved = store.merge_entity_type(tenant_id, type_name, into)
    store.append_audit(tenant_id, [AuditEntry(tenant_id, "type_merged", by, detail={
        "type_name": type_name, "into": into, "facts": moved, "before": types[type_name].status})])
    return {"merged": type_name, "into": into, "facts": moved}
