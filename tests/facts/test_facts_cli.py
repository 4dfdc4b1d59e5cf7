"""``knowledge facts …``: review from the command line, JSON output, specific errors, exit codes."""

from __future__ import annotations

import json

import pytest

from knowledge_plane.cli.main import main
from knowledge_plane.facts import review
from knowledge_plane.facts.sql_store import SqlFactStore
from tests.facts.support import NAMESPACE, make_fact


@pytest.fixture
def cli_store(registry_url: str, monkeypatch: pytest.MonkeyPatch):
    """A SQL fact store at the registry URL the CLI reads from the environment, seeded with the SLA
    contradiction, a newer SLA, and a return period."""
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url)
    monkeypatch.setenv("KNOWLEDGE_TENANT_ID", "acme")
    monkeypatch.setenv("KNOWLEDGE_REVIEWER", "rita")
    monkeypatch.delenv("KNOWLEDGE_FACT_STORE", raising=False)
    store = SqlFactStore(registry_url)
    facts = {"a": make_fact("acme", 99.7, "%", doc="contrat-a"), "b": make_fact("acme", 99.5, "%", doc="contrat-b"),
             "later": make_fact("acme", 99.9, "%", doc="avenant", valid_from="2024-06-01"),
             "retour": make_fact("acme", 30, "jours", subject="retour", predicate="délai de retour", doc="politique",
                                 fact_type="DURATION")}
    store.upsert_facts("acme", list(facts.values()))
    review.detect_and_store(store, "acme", list(facts.values()))
    yield store, {k: f.id for k, f in facts.items()}
    store.close()


def run(capsys, *argv: str) -> tuple[int, object, str]:
    code = main(["facts", *argv])
    out, err = capsys.readouterr()
    try:
        data = json.loads(out) if out.strip() else None
    except json.JSONDecodeError:
        data = out
    return code, data, err


def test_list_and_filters(cli_store, capsys):
    _, ids = cli_store
    code, data, _ = run(capsys, "list", "--json")
    assert code == 0 and {f["id"] for f in data} == set(ids.values())
    code, data, _ = run(capsys, "list", "--status", "conflicted", "--json")
    assert {f["id"] for f in data} == {ids["a"], ids["b"]}
    code, data, _ = run(capsys, "list", "--subject", "retours", "--json")
    assert [f["object"] for f in data] == ["30 jours"]
    code, text, _ = run(capsys, "list")
    assert code == 0 and "4 fact(s)" in text and "99.7 %" in text


def test_conflicts_and_show(cli_store, capsys):
    _, ids = cli_store
    code, data, _ = run(capsys, "list", "--conflicts", "--kind", "CONTRADICTS", "--json")
    assert code == 0 and [c["kind"] for c in data] == ["CONTRADICTS"] and data[0]["severity"] == "critical"
    code, data, _ = run(capsys, "show", ids["a"][:8], "--json")
    assert code == 0 and data["id"] == ids["a"]
    assert {r["kind"] for r in data["relations"]} == {"CONTRADICTS", "OVERRIDES"}
    assert [e["action"] for e in data["audit"]] == ["status_changed"]


@pytest.mark.parametrize(("argv", "message"), [
    (["show", "ffffffff"], "unknown fact id 'ffffffff'"),
    (["approve", "abc"], "at least 6 characters"),
    (["at", "service", "SLA", "2024-13-01"], "invalid date '2024-13-01': expected YYYY-MM-DD"),
    (["approve"], "give fact ids, or --all"),
    (["types", "approve", "Nope"], "unknown entity type 'Nope'"),
    (["resolve", "PLACEHOLDER_RETOUR", "--keep", "PLACEHOLDER_A"], "no open conflict between"),
])
def test_bad_input_gets_a_specific_error(cli_store, capsys, argv, message):
    _, ids = cli_store
    argv = [a.replace("PLACEHOLDER_RETOUR", ids["retour"]).replace("PLACEHOLDER_A", ids["a"]) for a in argv]
    code, data, err = run(capsys, *argv, "--json")
    assert code == 1 and message in err and message in data["error"]


def test_approving_a_contradicted_fact_points_to_resolve(cli_store, capsys):
    _, ids = cli_store
    code, _, err = run(capsys, "approve", ids["a"])
    assert code == 1 and "knowledge facts resolve" in err


def test_gate_resolve_and_point_in_time(cli_store, capsys):
    store, ids = cli_store
    code, data, _ = run(capsys, "gate", NAMESPACE, "--json")
    assert code == 1 and data["passed"] is False and len(data["critical_conflicts"]) == 1
    code, data, _ = run(capsys, "resolve", ids["b"], "--keep", ids["a"], "--json")
    assert code == 0 and data["rejected"] == [ids["b"]]
    code, data, _ = run(capsys, "gate", NAMESPACE, "--json")
    assert code == 0 and data["passed"] is True
    kept = store.get_facts("acme", [ids["a"]])[0]
    assert kept.status == "approved" and kept.approved_by == "rita"
    code, data, _ = run(capsys, "override", ids["later"], "--over", ids["a"], "--by", "olga", "--json")
    assert code == 0 and data["valid_until"] == "2024-05-31"
    code, data, _ = run(capsys, "at", "service", "disponibilité", "2024-03-15", "--json")
    assert [f["object"] for f in data["facts"]] == ["99.7 %"]
    code, data, _ = run(capsys, "at", "service", "SLA", "2024-06-01", "--json")
    assert [f["object"] for f in data["facts"]] == ["99.9 %"]
    code, data, _ = run(capsys, "timeline", "service", "SLA", "--json")
    assert [(e["valid_from"], e["valid_until"], e["status"]) for e in data] == [
        ("2024-01-01", "2024-05-31", "approved"), ("2024-06-01", None, "approved")]
    code, data, _ = run(capsys, "timeline", "service", "SLA", "--all", "--json")
    assert len(data) == 3


def test_bulk_approve_and_reject_by_filter(cli_store, capsys):
    store, ids = cli_store
    code, data, _ = run(capsys, "approve", "--all", "--namespace", NAMESPACE, "--status", "proposed", "--json")
    assert code == 0 and sorted(data["approved"]) == sorted([ids["later"], ids["retour"]]) and data["skipped"] == []
    code, data, _ = run(capsys, "reject", "--all", "--status", "conflicted", "--reason", "contrats à revoir", "--json")
    assert code == 0 and sorted(data["rejected"]) == sorted([ids["a"], ids["b"]])
    assert {f.reason for f in store.get_facts("acme", [ids["a"], ids["b"]])} == {"contrats à revoir"}
    with pytest.raises(SystemExit) as exc:  # argparse: --reason is required
        main(["facts", "reject", ids["retour"]])
    assert exc.value.code == 2


def test_entity_types(cli_store, capsys):
    store, _ = cli_store
    store.register_entity_types("acme", {"Gizmo": "pending", "Policy": "approved"})
    code, data, _ = run(capsys, "types", "list", "--status", "pending", "--json")
    assert code == 0 and [t["type_name"] for t in data] == ["Gizmo"]
    code, data, _ = run(capsys, "types", "reject", "Gizmo", "--json")
    assert code == 0 and data[0]["status"] == "rejected" and data[0]["decided_by"] == "rita"


def test_bad_store_setting_is_reported(cli_store, capsys, monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_FACT_STORE", "mongo")
    code, data, err = run(capsys, "list", "--json")
    assert code == 1 and "KNOWLEDGE_FACT_STORE must be 'sql' or 'neo4j'" in err
    monkeypatch.setenv("KNOWLEDGE_FACT_STORE", "neo4j")
    monkeypatch.delenv("NEO4J_URI", raising=False)
    code, _, err = run(capsys, "list", "--json")
    assert code == 1 and "needs NEO4J_URI" in err


def test_the_cli_reviews_a_graph_store_too(bolt_uri, capsys, monkeypatch):
    from knowledge_plane.facts.neo4j_store import Neo4jFactStore

    monkeypatch.setenv("KNOWLEDGE_FACT_STORE", "neo4j")
    monkeypatch.setenv("NEO4J_URI", bolt_uri)
    monkeypatch.setenv("KNOWLEDGE_TENANT_ID", "cli-graph")
    with Neo4jFactStore(bolt_uri, connection_acquisition_timeout=5) as store:
        fact = make_fact("cli-graph", 30, "jours", subject="retour", predicate="délai de retour", fact_type="DURATION")
        store.upsert_facts("cli-graph", [fact])
        code, data, _ = run(capsys, "approve", fact.id[:10], "--by", "gina", "--json")
        assert code == 0 and data["approved"] == [fact.id]
        assert store.get_facts("cli-graph", [fact.id])[0].approved_by == "gina"
