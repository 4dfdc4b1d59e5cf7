"""The console in the build's loop: the sample corpus is built, a reviewer signs in, approves a proposed
fact and resolves the critical contradiction that held the namespace back, and the next build passes
the gate and publishes both decisions with the reviewer's identity."""

from __future__ import annotations

import json
from pathlib import Path

from knowledge_plane.console.app import create_app
from knowledge_plane.console.config import ConsoleSettings
from knowledge_plane.facts.gate import critical_conflicts
from knowledge_plane.facts.store import open_fact_store
from knowledge_plane.storage.index_store import FACTS
from knowledge_plane.storage.registry import Registry
from tests.console.conftest import SECRET, Browser

NAMESPACE = "knowledge:policies"
SLA = ("---\nid: policies.sla.{n}.v1\ntitle: SLA {n}\ntruth_level: L1\nupdated: 2026-03-01\nvalid_from: 2026-03-01\n"
       'facts:\n  - subject: plateforme\n    predicate: SLA\n    value: {v}\n    unit: "%"\n'
       "    fact_type: SERVICE_LEVEL\n---\n# SLA {n}\n\n## Engagement\n\nDisponibilité de la plateforme.\n")


def test_decisions_in_the_console_reach_the_next_build(settings, corpus, build_corpus, tmp_path: Path,
                                                       accounts_text):
    for name, value in (("a", 99.7), ("b", 99.5)):
        (corpus / "policies" / f"sla-{name}.md").write_text(SLA.format(n=name, v=value), encoding="utf-8")
    success, first = build_corpus(settings, [NAMESPACE])
    assert not success and "no_critical_conflicts" in first[NAMESPACE]["reason"]

    accounts = tmp_path / "accounts"
    accounts.write_text(accounts_text, encoding="utf-8")
    rita = Browser(create_app(settings, ConsoleSettings(secret=SECRET, accounts_file=accounts))).sign_in("rita")
    queue = rita.client.get("/api/v1/facts", params={"namespace": NAMESPACE, "status": "proposed",
                                                      "limit": 200}).json()["facts"]
    returns = next(f for f in queue if "retour" in f["predicate_key"] and f["value"] == 30)
    assert rita.post("/queue/decide", {"action": "approve", "ids": [returns["id"]]}).status_code == 303
    (conflict,) = [c for c in rita.client.get("/api/v1/conflicts").json() if c["severity"] == "critical"]
    keep = next(f for f in conflict["facts"] if f["value"] == 0.997)
    decided = rita.post(f"/conflicts/{conflict['id']}/decide", {"action": "resolve", "fact": keep["id"]})
    assert decided.status_code == 303
    with open_fact_store(settings) as store:
        assert critical_conflicts(store, settings.tenant_id, NAMESPACE) == []

    success, second = build_corpus(settings, [NAMESPACE])
    report = second[NAMESPACE]
    assert success and report["promoted"] and report["chunks_embedded"] == 0
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    assert registry.aliases()[NAMESPACE]["latest"] == report["version"]
    version = Path(registry.version(NAMESPACE, report["version"]).path)
    published = {row["id"]: row for row in map(json.loads, (version / FACTS).read_text().splitlines())}
    assert published.keys() == {returns["id"], keep["id"]}
    assert {row["approved_by"] for row in published.values()} == {"account:rita"}
    assert published[keep["id"]]["object"] == "99.7 %"
