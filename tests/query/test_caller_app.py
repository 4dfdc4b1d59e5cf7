"""caller_app rules (Aurora Nexus): format, fallback, registry enforcement, missing table, listing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from knowledge_plane.storage.registry import Registry, query_log_entries, set_caller_app
from tests.query.support import headers, registry_url_of, state


def ask(client, **body):
    return client.post("/knowledge/query", json={"question": "La livraison est-elle gratuite ?", **body},
                       headers=headers("support_prod"))


@pytest.mark.parametrize("name", ["A", "a", "Aurora", "aurora nexus", "aurora.ui", "é-app", "a" * 65, "app\n", "",
                                  "ui/x"])
def test_a_malformed_caller_app_is_400(client, name):
    response = ask(client, caller_app=name)
    assert response.status_code == 400
    assert "caller_app" in response.json()["detail"]


@pytest.mark.parametrize("name", ["ab", "aurora_nexus_ui", "my-app-2", "a" * 64])
def test_a_well_formed_caller_app_is_accepted_when_not_enforced(client, name):
    assert ask(client, caller_app=name).status_code == 200


def test_an_absent_caller_app_is_logged_as_unknown(client):
    body = ask(client).json()
    state(client).query_log.flush()
    entry = next(e for e in query_log_entries(state(client).registry, 50) if e["request_id"] == body["request_id"])
    assert entry["caller_app"] == "unknown"


def test_enforced_registry(make_client, data_copy):
    client = make_client(data_copy, enforce_caller_app_registry=True)
    registry = Registry(registry_url_of(data_copy), "default")
    assert ask(client, caller_app="aurora_nexus_ui").status_code == 200
    assert ask(client).status_code == 200  # absent → unknown, which is seeded and active
    response = ask(client, caller_app="rogue_app")
    assert response.status_code == 400 and response.json()["detail"] == "caller_app inconnu ou inactif"
    set_caller_app(registry, "rogue_app", active=True)
    assert ask(client, caller_app="rogue_app").status_code == 200
    set_caller_app(registry, "rogue_app", active=False)
    assert ask(client, caller_app="rogue_app").json()["detail"] == "caller_app inconnu ou inactif"
    set_caller_app(registry, "unknown", active=False)
    assert ask(client).status_code == 400


def test_listing_shows_active_apps_only(make_client, data_copy):
    client = make_client(data_copy)
    registry = Registry(registry_url_of(data_copy), "default")
    set_caller_app(registry, "retired_app", active=False)
    set_caller_app(registry, "new_app", active=True)
    response = client.get("/knowledge/caller-apps", headers=headers("chatbot_prod"))
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["caller_apps"]] == ["aurora_nexus_ui", "new_app", "unknown"]
    assert client.get("/knowledge/caller-apps").status_code == 401


def test_a_missing_registry_table_is_an_explicit_500(make_client, data_copy):
    client = make_client(data_copy, enforce_caller_app_registry=True)
    with state(client).registry.engine.begin() as db:
        db.execute(sa.text("DROP TABLE caller_apps"))
    for response in (ask(client, caller_app="aurora_nexus_ui"),
                     client.get("/knowledge/caller-apps", headers=headers("chatbot_prod"))):
        assert response.status_code == 500
        assert "caller_apps" in response.json()["detail"] and "missing" in response.json()["detail"]
