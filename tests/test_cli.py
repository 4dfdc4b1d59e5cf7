"""The knowledge command as a user runs it: JSON reports and exit codes, in a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def knowledge(settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KNOWLEDGE_DATA_DIR": str(settings.paths.data_dir),
        "KNOWLEDGE_CORPUS_DIR": str(settings.paths.corpus_dir),
        "DAGSTER_HOME": str(settings.paths.data_dir / "dagster"),
        "KNOWLEDGE_REGISTRY_URL": settings.registry.url.get_secret_value(),
    }
    return subprocess.run(
        [sys.executable, "-m", "knowledge_plane.cli.main", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_build_status_rollback_round_trip(settings, corpus):
    first = knowledge(settings, "build", "--namespace", "knowledge:faq", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    faq = report["namespaces"][0]
    assert set(faq) >= {"version", "promoted", "documents", "chunks", "chunks_embedded", "quarantined"}
    assert faq["namespace"] == "knowledge:faq" and faq["promoted"] and faq["documents"] == 3
    (corpus / "faq" / "cassee.json").write_text("{")
    second = json.loads(knowledge(settings, "build", "--namespace", "knowledge:faq", "--json").stdout)
    assert second["namespaces"][0]["quarantined"] == [
        {
            "path": "knowledge/faq/cassee.json",
            "reason": "invalid-faq-json",
            "detail": "not valid JSON: Expecting property name enclosed in double quotes at line 1",
        }
    ]
    status = json.loads(knowledge(settings, "status", "--json").stdout)
    row = next(r for r in status if r["namespace"] == "knowledge:faq")
    assert row["latest"] == faq["version"] and row["rollback"] is None
    refused = knowledge(settings, "rollback", "knowledge:faq", "--json")
    assert refused.returncode == 1 and "no @rollback" in json.loads(refused.stdout)["error"]
    runs = list((settings.paths.data_dir / "dagster").glob("history/runs.db")) or list(
        (settings.paths.data_dir / "dagster").glob("**/*.db")
    )
    assert runs, "the build ran on the project's Dagster instance"


def test_unknown_namespace_is_a_clear_error(settings):
    result = knowledge(settings, "build", "--namespace", "knowledge:nope", "--json")
    assert result.returncode == 1
    assert "unknown namespace(s) knowledge:nope" in json.loads(result.stdout)["error"]


def edit_faq(corpus, answer: str) -> None:
    faq = corpus / "faq" / "livraison.json"
    data = json.loads(faq.read_text(encoding="utf-8"))
    data["items"].append({"question": f"Question {answer} ?", "answer": answer})
    faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


SLA = (
    "---\nid: policies.sla.{n}.v1\ntitle: SLA {n}\ntruth_level: L1\nupdated: 2026-03-01\nvalid_from: 2026-03-01\n"
    'facts:\n  - subject: plateforme\n    predicate: SLA\n    value: {v}\n    unit: "%"\n'
    "    fact_type: SERVICE_LEVEL\n---\n# SLA {n}\n\n## Engagement\n\nDisponibilité de la plateforme.\n"
)


def test_a_critical_conflict_holds_back_its_namespace_only_and_the_build_exits_1(settings, corpus):
    first = json.loads(knowledge(settings, "build", "--namespace", "knowledge:guides",
                                 "--namespace", "knowledge:policies", "--json").stdout)
    before = {r["namespace"]: r["version"] for r in first["namespaces"]}
    (corpus / "policies" / "sla-a.md").write_text(SLA.format(n="a", v=99.7), encoding="utf-8")
    (corpus / "policies" / "sla-b.md").write_text(SLA.format(n="b", v=99.5), encoding="utf-8")
    guide = corpus / "guides" / "choisir-batterie.md"
    guide.write_text(guide.read_text(encoding="utf-8") + "\n## Recyclage\n\nRapportez l'ancienne batterie.\n")
    result = knowledge(settings, "build", "--namespace", "knowledge:guides", "--namespace", "knowledge:policies",
                       "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert not report["success"] and len(report["run_ids"]) == 1  # one run for both
    rows = {r["namespace"]: r for r in report["namespaces"]}
    guides, policies = rows["knowledge:guides"], rows["knowledge:policies"]
    assert guides["promoted"] and not guides["held_back"] and guides["version"] != before["knowledge:guides"]
    assert policies["held_back"] and not policies["promoted"]
    assert policies["failed_checks"] == ["no_critical_conflicts"]
    assert "no_critical_conflicts" in policies["reason"] and "SLA" in policies["reason"]
    status = {r["namespace"]: r for r in json.loads(knowledge(settings, "status", "--json").stdout)}
    assert status["knowledge:guides"]["latest"] == guides["version"]
    assert status["knowledge:policies"]["latest"] == before["knowledge:policies"]


def test_promote_and_rollback_check_their_target(settings, corpus, build_corpus):
    from knowledge_plane.storage.registry import Registry

    _, first = build_corpus(settings, ["knowledge:faq"])
    edit_faq(corpus, "Oui, en 48 heures.")
    _, second = build_corpus(settings, ["knowledge:faq"])
    v1, v2 = first["knowledge:faq"]["version"], second["knowledge:faq"]["version"]
    moved = knowledge(settings, "promote", "knowledge:faq", v1, "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout) == {
        "namespace": "knowledge:faq", "from": v2, "to": v1, "latest": v1, "rollback": v2
    }
    _, third = build_corpus(settings, ["knowledge:faq"])  # same sources as v2: the operator's choice stays
    assert not third["knowledge:faq"]["promoted"] and "knowledge promote" in third["knowledge:faq"]["reason"]
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    assert registry.aliases()["knowledge:faq"] == {"latest": v1, "rollback": v2}
    vectors = Path(registry.version("knowledge:faq", v2).path) / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:200])  # a damaged @rollback
    refused = knowledge(settings, "rollback", "knowledge:faq", "--json")
    assert refused.returncode == 1 and "damaged files" in json.loads(refused.stdout)["error"]
    refused = knowledge(settings, "promote", "knowledge:faq", v2, "--json")
    assert refused.returncode == 1 and "damaged files" in json.loads(refused.stdout)["error"]
    unknown = knowledge(settings, "promote", "knowledge:faq", "v19990101-000000-abcdef", "--json")
    assert unknown.returncode == 1 and "is not a registered index version" in json.loads(unknown.stdout)["error"]
    assert registry.aliases()["knowledge:faq"] == {"latest": v1, "rollback": v2}
