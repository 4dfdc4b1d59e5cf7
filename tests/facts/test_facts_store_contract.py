"""The fact-store contract, run unchanged on SQLite, Postgres, FalkorDB over Bolt, and Neo4j.

Covers the source documents' cases (CONTRADICTS, OVERRIDES, DUPLICATES, OUTDATED, 99.7 % = 0.997,
the SLA on 2024-03-15 from the timeline), review, point-in-time queries, the gate, publication,
drift, entity types, extraction state, and tenant isolation.
"""

from __future__ import annotations

import datetime as dt

import pytest

from knowledge_plane.facts import review
from knowledge_plane.facts.drift import drift_report
from knowledge_plane.facts.gate import critical_conflicts
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
    AuditEntry,
    Relation,
    SourceState,
)
from knowledge_plane.facts.publish import approved_facts_snapshot
from knowledge_plane.facts.queries import facts_at, timeline
from knowledge_plane.facts.store import UnknownFact
from knowledge_plane.facts.temporal import valid_at
from tests.facts.support import NAMESPACE, make_fact, new_tenant


def seed(store, tenant, *facts):
    new = store.upsert_facts(tenant, list(facts))
    review.detect_and_store(store, tenant, store.get_facts(tenant, new))
    return [store.get_facts(tenant, [f.id])[0] for f in facts]


def kinds(store, tenant, **filters):
    return sorted(r.kind for r in store.list_relations(tenant, **filters))


# -- basic contract -------------------------------------------------------------------------
def test_upsert_is_idempotent_and_refreshes_provenance(store, tenant):
    a, b = make_fact(tenant, 99.7), make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour",
                                              fact_type="DURATION")
    assert sorted(store.upsert_facts(tenant, [a, b])) == sorted([a.id, b.id])
    a.source_version, a.status = "v2", APPROVED  # a re-extraction never changes a fact's status
    assert store.upsert_facts(tenant, [a, b]) == []
    held = {f.id: f for f in store.list_facts(tenant)}
    assert set(held) == {a.id, b.id}
    assert held[a.id].source_version == "v2" and held[a.id].status == PROPOSED
    assert held[a.id].value == pytest.approx(0.997) and held[a.id].unit == "ratio"
    assert held[b.id].valid_from == dt.date(2024, 1, 1) and held[b.id].valid_until is None
    assert held[b.id].created_at is not None and held[b.id].created_at.tzinfo is not None


def test_text_values_and_all_fields_round_trip(store, tenant):
    fact = make_fact(tenant, "date de livraison", None, subject="garantie", predicate="point de départ de la garantie",
                     fact_type="POLICY", valid_until="2025-12-31")
    fact.source_chunk_id, fact.entity_type, fact.extraction_method = "c" * 32, "Policy", "key_value"
    store.upsert_facts(tenant, [fact])
    (back,) = store.get_facts(tenant, [fact.id])
    for name in ("subject", "subject_key", "predicate", "predicate_key", "object", "value", "unit", "value_type",
                 "fact_type", "source_document", "source_version", "source_chunk_id", "extraction_method",
                 "entity_type", "valid_from", "valid_until", "confidence", "namespace"):
        assert getattr(back, name) == getattr(fact, name), name


@pytest.mark.parametrize("text", ["seuil minimum d'achat", "C:\\chemin\\n", "l'\\'échappé\"", "multi\nligne"])
def test_awkward_strings_round_trip(store, tenant, text):
    fact = make_fact(tenant, text, None, subject=text, predicate=text, fact_type="POLICY", doc="d'oc")
    store.upsert_facts(tenant, [fact])
    (back,) = store.list_facts(tenant, subject_key=fact.subject_key, predicate_key=fact.predicate_key)
    assert (back.subject, back.predicate, back.value, back.source_document) == (
        fact.subject, fact.predicate, fact.value, "d'oc")
    review.reject(store, tenant, [fact.id], text, "o'brien")
    assert store.audit_log(tenant, fact_id=fact.id)[-1].detail["reason"] == text


def test_unknown_ids_and_prefixes(store, tenant):
    fact = make_fact(tenant)
    store.upsert_facts(tenant, [fact])
    assert store.get_facts(tenant, ["nope", fact.id]) == [store.get_facts(tenant, [fact.id])[0]]
    assert review.resolve_ids(store, tenant, [fact.id[:8]]) == [fact.id]
    with pytest.raises(UnknownFact, match="unknown fact id 'ffffffff'"):
        review.resolve_ids(store, tenant, ["ffffffff"])
    with pytest.raises(UnknownFact, match="at least 6 characters"):
        review.resolve_ids(store, tenant, ["abc"])


def test_list_filters_order_and_counts(store, tenant):
    facts = [make_fact(tenant, 0.995, valid_from="2024-06-01", doc="b"), make_fact(tenant, 0.99, valid_from=None),
             make_fact(tenant, 0.997, valid_from="2024-01-01", doc="c"),
             make_fact(tenant, 59, "€", subject="livraison gratuite", predicate="seuil", fact_type="COST",
                       namespace="knowledge:other")]
    store.upsert_facts(tenant, facts)
    sla = store.list_facts(tenant, subject_key="service", predicate_key="sla")
    assert [f.valid_from for f in sla] == [None, dt.date(2024, 1, 1), dt.date(2024, 6, 1)]  # open start first
    assert [f.object for f in store.list_facts(tenant, namespace="knowledge:other")] == ["59 €"]
    assert len(store.list_facts(tenant, fact_type="SERVICE_LEVEL", limit=2)) == 2
    assert store.count_facts(tenant, "namespace") == {NAMESPACE: 3, "knowledge:other": 1}
    assert store.count_facts(tenant, "status", namespace=NAMESPACE) == {PROPOSED: 3}
    with pytest.raises(ValueError, match="cannot count facts by"):
        store.count_facts(tenant, "object")


def test_facts_for_keys(store, tenant):
    sla = [make_fact(tenant, 99.7, "%", doc="a"), make_fact(tenant, 99.5, "%", doc="b", status=REJECTED)]
    retour = make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour", fact_type="DURATION")
    other = make_fact(tenant, 2, "ans", subject="garantie", predicate="durée de garantie", fact_type="DURATION")
    store.upsert_facts(tenant, [*sla, retour, other])
    store.upsert_facts(new_tenant(), [make_fact("x", 99.7, "%")])
    found = store.facts_for_keys(tenant, [("service", "sla"), (retour.subject_key, retour.predicate_key),
                                          ("service", "sla"), ("nobody", "nothing")])
    assert sorted(f.id for f in found) == sorted([sla[0].id, sla[1].id, retour.id])


def test_only_review_fields_can_change(store, tenant):
    fact = make_fact(tenant)
    store.upsert_facts(tenant, [fact])
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update_facts(tenant, {fact.id: {"value": 0.5}})


# -- the source documents' cases ------------------------------------------------------------
def test_sla_997_vs_995_same_date_contradicts(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.7, "%", doc="contrat-a"),
                make_fact(tenant, 99.5, "%", doc="contrat-b"))
    (relation,) = store.list_relations(tenant)
    assert relation.kind == CONTRADICTS and relation.severity == "critical" and relation.status == OPEN
    assert relation.value_diff_pct == pytest.approx(0.2006, abs=1e-3)
    assert {relation.from_id, relation.to_id} == {a.id, b.id}
    assert {f.status for f in store.get_facts(tenant, [a.id, b.id])} == {CONFLICTED}
    gate = critical_conflicts(store, tenant, NAMESPACE)
    assert len(gate) == 1 and {f["object"] for f in gate[0]["facts"]} == {"99.7 %", "99.5 %"}


def test_sla_from_2024_06_01_overrides(store, tenant):
    old, new = seed(store, tenant, make_fact(tenant, 99.5, "%", doc="contrat-2023", status=APPROVED),
                    make_fact(tenant, 99.7, "%", valid_from="2024-06-01", doc="avenant-2024"))
    (relation,) = store.list_relations(tenant)
    assert (relation.kind, relation.from_id, relation.to_id) == (OVERRIDES, new.id, old.id)
    assert critical_conflicts(store, tenant, NAMESPACE) == []  # an override is a change, not a contradiction


def test_same_value_in_two_documents_duplicates(store, tenant):
    seed(store, tenant, make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour", doc="politique",
                                  fact_type="DURATION"),
         make_fact(tenant, "30 jours", None, subject="retour produit", predicate="Délai de retour", doc="faq",
                   fact_type="DURATION"))
    (relation,) = store.list_relations(tenant)
    assert relation.kind == DUPLICATES and relation.severity == "low"


def test_older_open_ended_fact_is_outdated_once_newer_is_approved(store, tenant):
    old, new = seed(store, tenant, make_fact(tenant, 99.5, "%", doc="contrat-2023", status=APPROVED),
                    make_fact(tenant, 99.7, "%", valid_from="2024-06-01", doc="avenant-2024"))
    assert kinds(store, tenant) == [OVERRIDES]
    review.approve(store, tenant, [new.id], "alice")
    outdated = store.list_relations(tenant, kinds=[OUTDATED])
    assert [(r.from_id, r.to_id) for r in outdated] == [(old.id, new.id)]


def test_997_percent_and_0997_do_not_conflict(store, tenant):
    seed(store, tenant, make_fact(tenant, 99.7, "%", doc="a"), make_fact(tenant, 0.997, None, doc="b"))
    assert CONTRADICTS not in kinds(store, tenant) and kinds(store, tenant) == [DUPLICATES]
    assert critical_conflicts(store, tenant, NAMESPACE) == []


def test_sla_on_2024_03_15_from_the_timeline(store, tenant):
    old, new = seed(store, tenant, make_fact(tenant, 99.5, "%", doc="contrat-2023"),
                    make_fact(tenant, 99.7, "%", valid_from="2024-06-01", doc="avenant-2024"))
    review.approve(store, tenant, [old.id], "alice")
    review.override(store, tenant, new.id, old.id, "alice")
    (closed,) = store.get_facts(tenant, [old.id])
    assert closed.valid_until == dt.date(2024, 5, 31)
    assert [f.object for f in facts_at(store, tenant, "service", "disponibilité", "2024-03-15")] == ["99.5 %"]
    assert [f.object for f in facts_at(store, tenant, "Service", "SLA", "2024-05-31")] == ["99.5 %"]
    assert [f.object for f in facts_at(store, tenant, "service", "sla", dt.date(2024, 6, 1))] == ["99.7 %"]
    assert facts_at(store, tenant, "service", "sla", "2023-12-31") == []
    entries = timeline(store, tenant, "service", "SLA")
    assert [(e["valid_from"], e["valid_until"], e["object"]) for e in entries] == [
        ("2024-01-01", "2024-05-31", "99.5 %"), ("2024-06-01", None, "99.7 %")]
    assert all(r["status"] == RESOLVED for e in entries for r in e["relations"])


# -- review ---------------------------------------------------------------------------------
def test_a_contradicted_fact_is_approved_only_through_resolve(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.7, "%", doc="a"), make_fact(tenant, 99.5, "%", doc="b"))
    with pytest.raises(review.ReviewError, match="resolve"):
        review.approve(store, tenant, [a.id], "alice")
    assert review.approve(store, tenant, [a.id], "alice", skip_conflicted=True)["skipped"] == [a.id]
    summary = review.resolve(store, tenant, b.id, a.id, "alice")
    assert summary["rejected"] == [b.id]
    kept, lost = store.get_facts(tenant, [a.id, b.id])
    assert (kept.status, kept.approved_by) == (APPROVED, "alice") and kept.approved_at is not None
    assert lost.status == REJECTED and a.id in lost.reason
    assert [r.status for r in store.list_relations(tenant)] == [RESOLVED]
    assert critical_conflicts(store, tenant, NAMESPACE) == []
    actions = [e.action for e in store.audit_log(tenant)]
    assert actions.count("conflict_detected") == 1 and "rejected" in actions and "approved" in actions


def test_reject_needs_a_reason_and_frees_the_other_side(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.7, "%", doc="a"), make_fact(tenant, 99.5, "%", doc="b"))
    with pytest.raises(review.ReviewError, match="reason"):
        review.reject(store, tenant, [a.id], " ", "bob")
    review.reject(store, tenant, [a.id], "typo in the contract", "bob")
    rejected, other = store.get_facts(tenant, [a.id, b.id])
    assert (rejected.status, rejected.reason) == (REJECTED, "typo in the contract")
    assert other.status == PROPOSED  # no open contradiction left
    history = store.audit_log(tenant, fact_id=a.id)
    assert [e.action for e in history] == ["status_changed", "rejected"]
    assert history[-1].actor == "bob" and history[-1].detail["reason"] == "typo in the contract"


def test_override_needs_a_later_start(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.5, "%", doc="a"),
                make_fact(tenant, 99.7, "%", valid_from="2024-06-01", doc="b"))
    with pytest.raises(review.ReviewError, match="does not start after"):
        review.override(store, tenant, a.id, b.id, "alice")
    other = make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour", fact_type="DURATION")
    store.upsert_facts(tenant, [other])
    with pytest.raises(review.ReviewError, match="not about the same subject and predicate"):
        review.override(store, tenant, b.id, other.id, "alice")


def test_resolve_an_override_keeping_the_newer_closes_the_older(store, tenant):
    old, new = seed(store, tenant, make_fact(tenant, 99.5, "%", doc="a", status=APPROVED),
                    make_fact(tenant, 99.7, "%", valid_from="2024-06-01", doc="b"))
    summary = review.resolve(store, tenant, new.id, new.id, "alice")
    assert summary["closed"] == [old.id]
    old_after, new_after = store.get_facts(tenant, [old.id, new.id])
    assert old_after.valid_until == dt.date(2024, 5, 31) and old_after.status == APPROVED
    assert new_after.status == APPROVED
    assert store.list_relations(tenant, status=OPEN) == []


def test_resolve_keeping_the_older_rejects_the_newer(store, tenant):
    old, new = seed(store, tenant, make_fact(tenant, 99.5, "%", doc="a"),
                    make_fact(tenant, 99.7, "%", valid_from="2024-06-01", doc="b"))
    review.resolve(store, tenant, new.id, old.id, "alice")
    old_after, new_after = store.get_facts(tenant, [old.id, new.id])
    assert (old_after.status, new_after.status) == (APPROVED, REJECTED) and old_after.valid_until is None


def test_merge_duplicates_keeps_one_and_passes_the_approval(store, tenant):
    keep, dup = seed(store, tenant, make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour",
                                              doc="politique", fact_type="DURATION"),
                     make_fact(tenant, 30, "days", subject="retour", predicate="délai de retour", doc="faq",
                               fact_type="DURATION", status=APPROVED))
    review.merge(store, tenant, keep.id, [dup.id], "carol")
    kept, merged = store.get_facts(tenant, [keep.id, dup.id])
    assert kept.status == APPROVED and (merged.status, merged.merged_into) == (REJECTED, keep.id)
    assert store.list_relations(tenant, status=OPEN) == []
    with pytest.raises(review.ReviewError, match="merged into"):
        review.approve(store, tenant, [dup.id], "carol")


def test_merge_refuses_different_values(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.7, "%", doc="a"), make_fact(tenant, 99.5, "%", doc="b"))
    with pytest.raises(review.ReviewError, match="do not hold the same value"):
        review.merge(store, tenant, a.id, [b.id], "carol")


def test_resolve_without_a_conflict_says_so(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.7, "%", doc="a"),
                make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour", fact_type="DURATION"))
    with pytest.raises(review.ReviewError, match="no open conflict between"):
        review.resolve(store, tenant, a.id, b.id, "alice")


# -- point in time over many dates ----------------------------------------------------------
PERIODS = [("2024-01-01", "2024-03-31", 0.99), ("2024-04-01", "2024-05-31", 0.995), ("2024-06-01", None, 0.997)]
DATES = ["2023-12-31", "2024-01-01", "2024-02-29", "2024-03-31", "2024-04-01", "2024-05-31", "2024-06-01",
         "2030-01-01"]


@pytest.mark.parametrize("day", DATES)
def test_point_in_time_on_touching_periods(store, tenant, day):
    store.upsert_facts(tenant, [make_fact(tenant, v, "ratio", valid_from=f, valid_until=u, doc=f"d{n}", status=APPROVED)
                                for n, (f, u, v) in enumerate(PERIODS)])
    on = dt.date.fromisoformat(day)
    expected = [v for f, u, v in PERIODS if valid_at(dt.date.fromisoformat(f), u and dt.date.fromisoformat(u), on)]
    assert [f.value for f in facts_at(store, tenant, "service", "SLA", on)] == pytest.approx(expected)


def test_point_in_time_ignores_unapproved_unless_asked(store, tenant):
    store.upsert_facts(tenant, [make_fact(tenant, 99.7, "%")])
    assert facts_at(store, tenant, "service", "SLA", "2024-03-15") == []
    assert len(facts_at(store, tenant, "service", "SLA", "2024-03-15", [PROPOSED])) == 1


# -- publication, drift ---------------------------------------------------------------------
def test_snapshot_holds_approved_facts_only(store, tenant):
    a, b = make_fact(tenant, 99.7, "%", status=APPROVED), make_fact(tenant, 30, "jours", subject="retour",
                                                                    predicate="délai de retour", fact_type="DURATION")
    store.upsert_facts(tenant, [a, b])
    (row,) = approved_facts_snapshot(store, tenant, NAMESPACE)
    assert row["id"] == a.id and row["value"] == pytest.approx(0.997) and row["unit"] == "ratio"
    assert row["source"] == "sla-a@v1" and row["valid_from"] == "2024-01-01" and row["confidence"] == 0.9
    assert approved_facts_snapshot(store, tenant, "knowledge:elsewhere") == []


def test_drift_reports_dangling_orphans_and_unpublished(store, tenant):
    published = make_fact(tenant, 99.7, "%", status=APPROVED, doc="kept")
    unpublished = make_fact(tenant, 30, "jours", subject="retour", predicate="délai de retour", status=APPROVED,
                            doc="kept", fact_type="DURATION")
    orphan = make_fact(tenant, 59, "€", subject="livraison gratuite", predicate="seuil", status=APPROVED,
                       doc="gone", fact_type="COST")
    store.upsert_facts(tenant, [published, unpublished, orphan])
    payloads = [{"chunk_id": "c1", "doc_id": "kept", "fact_ids": [published.id, "deadbeef-dead"]}]
    report = drift_report(store, tenant, payloads)
    assert report["dangling"] == ["deadbeef-dead"] and report["orphans"] == [orphan.id]
    assert report["unpublished"] == [unpublished.id] and report["drift_pct"] == 75.0
    assert store.get_facts(tenant, [orphan.id])  # only reported
    removed = drift_report(store, tenant, payloads, remove_orphans=True)
    assert removed["orphans_removed"] == 1 and store.get_facts(tenant, [orphan.id]) == []
    assert [e.action for e in store.audit_log(tenant, fact_id=orphan.id)] == ["orphan_removed"]


def test_delete_takes_relations_along(store, tenant):
    a, b = seed(store, tenant, make_fact(tenant, 99.7, "%", doc="a"), make_fact(tenant, 99.5, "%", doc="b"))
    assert store.delete_facts(tenant, [a.id]) == 1
    assert store.list_relations(tenant) == [] and [f.id for f in store.list_facts(tenant)] == [b.id]


# -- entity types, extraction state ---------------------------------------------------------
def test_entity_types_are_unique_per_tenant(store, tenant):
    assert store.register_entity_types(tenant, {"Policy": "approved", "Gizmo": "pending"}) == {
        "Policy": "approved", "Gizmo": "pending"}
    assert store.register_entity_types(tenant, {"Gizmo": "approved"}) == {"Gizmo": "pending"}  # first sight wins
    review.decide_entity_type(store, tenant, "Gizmo", False, "admin")
    assert [(t.type_name, t.status) for t in store.entity_types(tenant)] == [
        ("Gizmo", "rejected"), ("Policy", "approved")]
    assert [t.type_name for t in store.entity_types(tenant, "rejected")] == ["Gizmo"]
    other = new_tenant()
    assert store.register_entity_types(other, {"Gizmo": "pending"}) == {"Gizmo": "pending"}
    with pytest.raises(review.ReviewError, match="unknown entity type 'Nope'"):
        review.decide_entity_type(store, tenant, "Nope", True, "admin")


def test_source_states_round_trip(store, tenant):
    store.set_source_states(tenant, NAMESPACE, [SourceState("d1", "h1", "rules-1", "h1", "gpt", 3),
                                                SourceState("d2", "h2", "rules-1")])
    store.set_source_states(tenant, NAMESPACE, [SourceState("d2", "h3", "rules-1")])
    states = store.source_states(tenant, NAMESPACE)
    assert (states["d1"].llm_content_hash, states["d1"].facts) == ("h1", 3) and states["d2"].content_hash == "h3"
    store.delete_source_states(tenant, NAMESPACE, ["d1"])
    assert set(store.source_states(tenant, NAMESPACE)) == {"d2"} and store.source_states(tenant, "knowledge:x") == {}


# -- tenant isolation -----------------------------------------------------------------------
def test_tenants_never_see_each_other(store):
    t1, t2 = new_tenant(), new_tenant()
    a1, b1 = seed(store, t1, make_fact(t1, 99.7, "%", doc="a"), make_fact(t1, 99.5, "%", doc="b"))
    a2 = make_fact(t2, 99.7, "%", doc="a", status=APPROVED)
    store.upsert_facts(t2, [a2])
    review.detect_and_store(store, t2, [a2])
    assert a1.id != a2.id  # the tenant is part of a fact's identity
    assert store.get_facts(t2, [a1.id, b1.id]) == [] and store.list_relations(t2) == []
    assert [f.id for f in store.list_facts(t2)] == [a2.id]
    assert store.match_ids(t2, a1.id[:8]) == []
    store.update_facts(t2, {a1.id: {"status": REJECTED}})  # names a fact of t1: changes nothing
    assert store.get_facts(t1, [a1.id])[0].status == CONFLICTED
    store.add_relations(t2, [Relation(t1, CONTRADICTS, a1.id, a2.id)])  # a relation of another tenant is refused
    assert store.list_relations(t1, fact_ids=[a1.id], kinds=[CONTRADICTS]) == store.list_relations(
        t1, kinds=[CONTRADICTS])
    assert store.count_facts(t2, "status") == {APPROVED: 1}
    assert facts_at(store, t1, "service", "SLA", "2024-03-15") == []
    assert critical_conflicts(store, t2, NAMESPACE) == [] and len(critical_conflicts(store, t1, NAMESPACE)) == 1
    store.append_audit(t2, [AuditEntry(t1, "forged", "mallory")])
    assert "forged" not in [e.action for e in store.audit_log(t1)] + [e.action for e in store.audit_log(t2)]
    assert store.delete_facts(t2, [a1.id]) == 0 and store.get_facts(t1, [a1.id])
