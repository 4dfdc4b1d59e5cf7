"""Entity types created and merged from the console by an admin, audited; refused for a reviewer,
for unknown or rejected types, and the same merge on the graph store."""

from __future__ import annotations

import pytest

from knowledge_plane.facts import review
from tests.console.conftest import TENANT, audit_actions
from tests.facts.servers import ServerUnavailable, bolt_server
from tests.facts.support import make_fact, new_tenant


def _typed(tenant, entity_type, n, doc):
    facts = [make_fact(tenant, 10 + i, "jours", subject=f"pièce {doc} {i}", predicate="délai de retour", doc=doc,
                       fact_type="DURATION") for i in range(n)]
    for fact in facts:
        fact.entity_type = entity_type
    return facts


def test_an_admin_creates_an_entity_type_from_the_page(browser, seeded):
    adam = browser("adam")
    page = adam.client.get("/entity-types").text
    assert 'id="create-type"' in page
    response = adam.post("/entity-types", {"type_name": "  Vehicle "})
    assert response.status_code == 303
    assert "created entity type Vehicle" in adam.client.get(response.headers["location"]).text
    (vehicle,) = seeded.store.entity_types(TENANT)
    assert (vehicle.type_name, vehicle.status, vehicle.decided_by) == ("Vehicle", "approved", "account:adam")
    assert ("type_created", "account:adam") in audit_actions(seeded.store)
    again = adam.client.post("/api/v1/entity-types", json={"type_name": "Vehicle"},
                             headers={"X-CSRF-Token": adam.csrf()})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    rita = browser("rita")
    assert 'id="create-type"' not in rita.client.get("/entity-types").text
    assert rita.post("/entity-types", {"type_name": "Part"}).status_code == 403
    assert rita.client.post("/api/v1/entity-types", json={"type_name": "Part"},
                            headers={"X-CSRF-Token": rita.csrf()}).status_code == 403
    assert adam.client.post("/entity-types", data={"type_name": "Part", "csrf_token": "forged"}).status_code == 403
    assert [t.type_name for t in seeded.store.entity_types(TENANT)] == ["Vehicle"]


def test_an_admin_merges_a_type_and_its_facts_follow(browser, seeded):
    seeded.store.register_entity_types(TENANT, {"Voiture": "pending", "Vehicle": "approved", "Spam": "rejected"})
    seeded.store.upsert_facts(TENANT, _typed(TENANT, "Voiture", 3, "flotte") + _typed(TENANT, "Vehicle", 2, "parc"))
    adam = browser("adam")
    assert 'action="/entity-types/Voiture/merge"' in adam.client.get("/entity-types").text
    response = adam.post("/entity-types/Voiture/merge", {"into": "Vehicle"})
    assert response.status_code == 303
    assert "merged entity type Voiture into Vehicle (3 facts)" in adam.client.get("/entity-types").text
    counts = {t["type_name"]: t["facts"] for t in adam.client.get("/api/v1/entity-types").json()}
    assert counts == {"Spam": 0, "Vehicle": 5}  # Voiture left the registry, its facts are Vehicle's
    merged = next(e for e in seeded.store.audit_log(TENANT) if e.action == "type_merged")
    assert merged.actor == "account:adam"
    assert merged.detail == {"type_name": "Voiture", "into": "Vehicle", "facts": 3, "before": "pending"}
    headers = {"X-CSRF-Token": adam.csrf()}
    refused = {
        "Vehicle": ("Spam", "is rejected: merge into an approved or pending type"),
        "Voiture": ("Vehicle", "unknown entity type 'Voiture'"),
        "Spam": ("Spam", "cannot be merged into itself"),
    }
    for source, (into, message) in refused.items():
        answer = adam.client.post(f"/api/v1/entity-types/{source}/merge", json={"into": into}, headers=headers)
        assert answer.status_code == 409 and message in answer.json()["detail"], answer.text
    assert browser("rita").post("/entity-types/Vehicle/merge", {"into": "Spam"}).status_code == 403
    assert [a for a, _ in audit_actions(seeded.store)].count("type_merged") == 1


def test_the_graph_store_merges_alike():
    from knowledge_plane.facts.neo4j_store import Neo4jFactStore

    try:
        with bolt_server() as uri:
            store = Neo4jFactStore(uri, connection_acquisition_timeout=5)
            try:
                tenant = new_tenant()
                store.register_entity_types(tenant, {"Voiture": "pending", "Vehicle": "approved"})
                store.upsert_facts(tenant, _typed(tenant, "Voiture", 2, "flotte"))
                result = review.merge_entity_type(store, tenant, "Voiture", "Vehicle", "account:adam")
                assert result == {"merged": "Voiture", "into": "Vehicle", "facts": 2}
                assert [t.type_name for t in store.entity_types(tenant)] == ["Vehicle"]
                assert store.count_facts(tenant, "entity_type") == {"Vehicle": 2}
                entity_types = store._run("MATCH (e:Entity) WHERE e.tenant_id = $tenant RETURN e.type AS t",
                                          read=True, tenant=tenant)
                assert {r["t"] for r in entity_types} == {"Vehicle"}
            finally:
                store.close()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
