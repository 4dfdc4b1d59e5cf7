"""Facts through the build: extracted from the corpus, published once approved, gating promotion."""

from __future__ import annotations

from pathlib import Path

from core.facts.model import APPROVED, PROPOSED
from core.facts.review import approve
from core.facts.store import open_fact_store
from core.index_store import FACTS
from core.registry import Registry


def version_dir(settings, namespace: str, version: str) -> Path:
    return Path(Registry(settings.registry_url, settings.tenant_id).version(namespace, version).path)


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
    from core.build import BuildContext
    from core.facts.pipeline import extract_namespace_facts

    build_corpus(settings, ["knowledge:policies"])
    with open_fact_store(settings) as store:
        again = extract_namespace_facts(BuildContext(settings, run_id="again"), "knowledge:policies", store)
    assert again["new_facts"] == 0 and again["documents_extracted"] == 0


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
    registry = Registry(settings.registry_url, settings.tenant_id)
    assert registry.aliases()["knowledge:policies"]["latest"] == first["knowledge:policies"]["version"]


def test_drift_check_job_reports_unpublished_facts_until_the_next_build(settings, build_corpus):
    from core.drift import drift_check
    from definitions import defs
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
