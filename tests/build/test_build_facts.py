"""Facts through the build: extracted from the corpus, published once approved, gating promotion."""

from __future__ import annotations

from pathlib import Path

from knowledge_plane.facts.model import APPROVED, PROPOSED
from knowledge_plane.facts.review import approve
from knowledge_plane.facts.store import open_fact_store
from knowledge_plane.storage.index_store import FACTS
from knowledge_plane.storage.registry import Registry


def version_dir(settings, namespace: str, version: str) -> Path:
    return Path(Registry(settings.registry.url.get_secret_value(), settings.tenant_id).version(namespace, version).path)


def test_approving_facts_publishes_a_new_version_without_reembedding(settings, build_corpus):
    _, first = build_corpus(settings, ["knowledge:policies"])
    policies = first["knowledge:policies"]
    assert (version_dir(settings, "knowledge:policies", policies["version"]) / FACTS).read_text() == ""
    with open_fact_store(settings) as store:
        proposed = store.list_facts("default", namespace="knowledge:policies", statuses=[PROPOSED])
        returns = [f for f in proposed if "retour" in f.predicate_key and f.value == 30]
        assert returns, [(f.subject, f.predicate, f.value) for f in proposed][:20]
        approve(store, "default", [returns[0].id], by="reviewer@test")
    success, second = build_corpus(settings, ["knowledge:policies"])
    report = second["knowledge:policies"]
    assert success and report["promoted"] and report["chunks_embedded"] == 0
    assert report["version"] != policies["version"]
    published = (version_dir(settings, "knowledge:policies", report["version"]) / FACTS).read_text()
    assert returns[0].id in published and '"approved_by": "reviewer@test"' in published
    with open_fact_store(settings) as store:
        assert store.get_facts("default", [returns[0].id])[0].status == APPROVED


def test_an_unchanged_corpus_extracts_nothing_new(settings, build_corpus):
    from knowledge_plane.build.facts import extract_namespace_facts
    from knowledge_plane.build.stages import BuildContext, document_chunks, parsed_documents, raw_documents

    build_corpus(settings, ["knowledge:policies"])
    ctx = BuildContext(settings, run_id="again")  # a run of its own: it reads only its own records
    raw_documents(ctx, "knowledge:policies"), parsed_documents(ctx, "knowledge:policies")
    document_chunks(ctx, "knowledge:policies")
    with open_fact_store(settings) as store:
        again = extract_namespace_facts(ctx, "knowledge:policies", store)
    assert again.new_facts == 0 and again.documents_extracted == 0


def test_a_critical_contradiction_blocks_promotion(settings, corpus, build_corpus):
    _, first = build_corpus(settings, ["knowledge:policies"])
    sla = (
        "---\nid: policies.sla.{n}.v1\ntitle: SLA {n}\ntruth_level: L1\nupdated: 2026-03-01\nvalid_from: 2026-03-01\n"
        'facts:\n  - subject: plateforme\n    predicate: SLA\n    value: {v}\n    unit: "%"\n'
        "    fact_type: SERVICE_LEVEL\n---\n# SLA {n}\n\n## Engagement\n\nDisponibilité de la plateforme.\n"
    )
    (corpus / "policies" / "sla-a.md").write_text(sla.format(n="a", v=99.7), encoding="utf-8")
    (corpus / "policies" / "sla-b.md").write_text(sla.format(n="b", v=99.5), encoding="utf-8")
    success, second = build_corpus(settings, ["knowledge:policies"])
    assert not success and not second["knowledge:policies"]["promoted"]
    assert "no_critical_conflicts" in second["knowledge:policies"]["reason"]
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    assert registry.aliases()["knowledge:policies"]["latest"] == first["knowledge:policies"]["version"]


def test_drift_check_job_reports_unpublished_facts_until_the_next_build(settings, build_corpus):
    from definitions import defs
    from knowledge_plane.facts.drift_check import drift_check
    from resources import build_resources

    build_corpus(settings, ["knowledge:policies"])
    assert all(r["drift_pct"] == 0 for r in drift_check(settings))
    with open_fact_store(settings) as store:
        fact = store.list_facts("default", namespace="knowledge:policies", statuses=[PROPOSED])[0]
        approve(store, "default", [fact.id], by="reviewer@test")
    policies = next(r for r in drift_check(settings) if r["namespace"] == "knowledge:policies")
    assert policies["unpublished"] == [fact.id] and policies["drift_pct"] > 0
    result = defs.resolve_job_def("fact_drift_check").execute_in_process(resources=build_resources(settings))
    assert result.success
    build_corpus(settings, ["knowledge:policies"])
    assert all(r["drift_pct"] == 0 for r in drift_check(settings))


def test_three_sla_documents_through_the_build_contradict_and_override(settings, corpus, build_corpus, monkeypatch,
                                                                        capsys):
    """Issue 12's done-when: the three SLA sentences, stated in prose, read by the French parser."""
    import json

    from knowledge_plane.cli.main import main

    contracts = corpus / "policies"
    doc = "---\nid: contracts.sla.{n}\ntitle: Contrat {n}\nupdated: {d}\nvalid_from: {d}\n---\n# Contrat {n}\n\n{s}\n"
    for n, day, value in (("a", "2024-01-01", "99,7"), ("b", "2024-01-01", "99,5"), ("c", "2024-06-01", "99,9")):
        sentence = f"Le SLA de SAP S/4HANA Cloud est de {value} %."
        (contracts / f"sla-{n}.md").write_text(doc.format(n=n, d=day, s=sentence), encoding="utf-8")
    success, reports = build_corpus(settings, ["knowledge:policies"])
    report = reports["knowledge:policies"]
    assert not success and not report["promoted"] and "no_critical_conflicts" in report["reason"]
    with open_fact_store(settings) as store:
        facts = store.list_facts("default", namespace="knowledge:policies", subject_key="sap s 4hana cloud")
    assert sorted((f.subject, f.predicate, f.value, str(f.valid_from), f.extraction_method) for f in facts) == [
        ("SAP S/4HANA Cloud", "SLA", 0.995, "2024-01-01", "sentence"),
        ("SAP S/4HANA Cloud", "SLA", 0.997, "2024-01-01", "sentence"),
        ("SAP S/4HANA Cloud", "SLA", 0.999, "2024-06-01", "sentence")]

    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", settings.registry.url.get_secret_value())
    monkeypatch.setenv("KNOWLEDGE_TENANT_ID", settings.tenant_id)
    assert main(["facts", "list", "--conflicts", "--namespace", "knowledge:policies", "--json"]) == 0
    relations = [r for r in json.loads(capsys.readouterr().out) if r["from"]["subject"] == "SAP S/4HANA Cloud"]
    by_kind = {}
    for relation in relations:
        by_kind.setdefault(relation["kind"], []).append(relation)
    assert set(by_kind) == {"CONTRADICTS", "OVERRIDES"}
    (contradiction,) = by_kind["CONTRADICTS"]
    assert {contradiction["from"]["value"], contradiction["to"]["value"]} == {0.997, 0.995}
    assert contradiction["severity"] == "critical"
    # one overriding fact, 99,9 % from 2024-06-01, over each of the two earlier statements
    assert {r["from"]["value"] for r in by_kind["OVERRIDES"]} == {0.999}
    assert {r["to"]["value"] for r in by_kind["OVERRIDES"]} == {0.997, 0.995}
    assert main(["facts", "list", "--conflicts", "--namespace", "knowledge:policies", "--kind", "CONTRADICTS"]) == 0
    text = capsys.readouterr().out
    assert "critical" in text and "99,7 %" in text and "99,5 %" in text and "SAP S/4HANA Cloud / SLA" in text
