"""Administration and insight: packs, caller apps, index rollback (the CLI's), quarantined documents,
query-log figures; every change audited with the admin's identity."""

from __future__ import annotations

from knowledge_plane.storage.packs import Packs
from knowledge_plane.storage.registry import Registry, get_caller_app
from tests.console.conftest import TENANT, audit_actions
from tests.facts.support import NAMESPACE


def test_rollback_runs_the_cli_rollback_and_is_audited(browser, seeded):
    adam = browser("adam")
    registry = Registry(seeded.settings.registry.url.get_secret_value(), TENANT)
    assert registry.aliases(NAMESPACE)[NAMESPACE] == {"latest": "v2024-03-01", "rollback": "v2024-02-01"}
    response = adam.post("/admin/rollback", {"namespace": NAMESPACE})
    assert response.status_code == 303
    assert "rolled back knowledge:facts-test: @latest v2024-03-01 → v2024-02-01" in \
        adam.client.get(response.headers["location"]).text
    assert registry.aliases(NAMESPACE)[NAMESPACE] == {"latest": "v2024-02-01", "rollback": "v2024-01-01"}
    entry = next(e for e in seeded.store.audit_log(TENANT) if e.action == "index_rollback")
    assert entry.actor == "account:adam" and entry.detail["from"] == "v2024-03-01"
    api = adam.client.post("/api/v1/indexes/rollback", json={"namespace": NAMESPACE},
                           headers={"X-CSRF-Token": adam.csrf()})
    assert api.json()["latest"] == "v2024-01-01"
    none_left = adam.client.post("/api/v1/indexes/rollback", json={"namespace": NAMESPACE},
                                 headers={"X-CSRF-Token": adam.csrf()})
    assert none_left.status_code == 404 and "no @rollback version" in none_left.json()["detail"]
    unknown = adam.post("/admin/rollback", {"namespace": "knowledge:nope"})
    assert unknown.status_code == 404


def test_packs_created_disabled_enabled(browser, seeded):
    adam = browser("adam")
    assert adam.post("/admin/packs", {"pack_id": "garage-v1", "name": "Garage"}).status_code == 303
    assert adam.post("/admin/packs/garage-v1/active", {"active": "false"}).status_code == 303
    packs = Packs(Registry(seeded.settings.registry.url.get_secret_value(), TENANT).engine, TENANT)
    assert packs.disabled() == {"garage-v1"}
    bad = adam.post("/admin/packs", {"pack_id": "Bad Pack!"})
    assert bad.status_code == 400 and "malformed pack id" in bad.text
    headers = {"X-CSRF-Token": adam.csrf()}
    assert adam.client.post("/api/v1/packs/garage-v1/enable", headers=headers).json()["active"] is True
    assert adam.client.post("/api/v1/packs/nope/enable", headers=headers).status_code == 404
    assert packs.disabled() == set()
    actions = audit_actions(seeded.store)
    assert {("pack_created", "account:adam"), ("pack_disabled", "account:adam"),
            ("pack_enabled", "account:adam")} <= set(actions)


def test_caller_apps_registered_and_deactivated(browser, seeded):
    adam = browser("adam")
    registry = Registry(seeded.settings.registry.url.get_secret_value(), TENANT)
    assert adam.post("/admin/caller-apps", {"name": "garage_app"}).status_code == 303
    assert get_caller_app(registry, "garage_app").active
    assert adam.post("/admin/caller-apps/garage_app/active", {"active": "false"}).status_code == 303
    assert not get_caller_app(registry, "garage_app").active
    bad = adam.post("/admin/caller-apps", {"name": "Garage App"})
    assert bad.status_code == 400 and "malformed caller app name" in bad.text
    dup = adam.post("/admin/caller-apps", {"name": "garage_app"})
    assert dup.status_code == 400 and "already exists" in dup.text
    page = adam.client.get("/admin").text
    assert "garage_app" in page and "aurora_nexus_ui" in page
    assert ("caller_app_deactivated", "account:adam") in audit_actions(seeded.store)


def test_admin_page_lists_versions_and_quarantined_documents(browser):
    adam = browser("adam")
    html = adam.client.get("/admin").text
    assert "v2024-03-01" in html and "Roll back to v2024-02-01" in html
    assert "secrets.md" in html and "secret-detected" in html and "AWS access key on line 3" in html
    quarantine = adam.client.get("/api/v1/quarantine").json()
    assert quarantine[0]["quarantined"][0]["reason"] == "secret-detected"


def test_query_insight_figures_and_chart(browser):
    vera = browser("vera")
    data = vera.client.get("/api/v1/insight", params={"days": 2}).json()
    overall = data["overall"]
    # 20 queries: i % 4 → success, success, needs_clarification, refused; latency 10 ms × (i + 1)
    assert overall["queries"] == 20 and overall["answer_rate"] == 0.5 and overall["clarification_rate"] == 0.25
    assert overall["refusals"] == 5 and overall["p50_ms"] == 105.0 and overall["p95_ms"] == 190.5
    assert data["clarification_alert"] is True
    assert set(data["caller_apps"]) == {"aurora_nexus_ui", "unknown"} and set(data["namespaces"]) == {NAMESPACE}
    html = vera.client.get("/insight", params={"days": 2}).text
    assert "<svg" in html and "needs_clarification" in html and "above 15 %" in html
    assert vera.client.get("/insight", params={"days": 0}).status_code == 422
