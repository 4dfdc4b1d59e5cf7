"""The build job end to end on the sample corpus, through Dagster, on temporary data dirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from knowledge_plane.build.records import ChunksRecord
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.serving.embedding import MODEL_NAME
from knowledge_plane.storage.index_store import read_version
from knowledge_plane.storage.registry import Registry
from tests.documents import docx_bytes, fake_secrets, pdf_bytes

POLICY = "knowledge/policies/politique-retour.md"


def latest(settings, namespace: str) -> str | None:
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    return registry.aliases().get(namespace, {}).get("latest")


def payloads(settings, namespace: str, version: str) -> list[dict]:
    record = Registry(settings.registry.url.get_secret_value(), settings.tenant_id).version(namespace, version)
    return read_version(Path(record.path)).payloads


def test_full_build_promotes_every_namespace_with_complete_payloads(settings, build_corpus):
    if os.environ.get("KNOWLEDGE_TEST_REGISTRY") == "postgres":
        assert settings.registry.url.get_secret_value().startswith("postgresql+psycopg://")
    success, reports = build_corpus(settings)
    assert success
    assert set(reports) >= {"internal:code", "knowledge:faq", "knowledge:policies", "knowledge:runbooks"}
    uploads = reports.pop("knowledge:uploads")  # no uploads yet: nothing to publish, and not a failure
    assert not uploads["promoted"] and uploads["reason"] == "no documents: nothing to publish"
    for namespace, report in reports.items():
        assert report["promoted"], report
        assert report["chunks"] > 0 and report["quarantined"] == []
        assert latest(settings, namespace) == report["version"]
    version = read_version(
        Path(
            Registry(settings.registry.url.get_secret_value(), "default")
            .version("knowledge:policies", reports["knowledge:policies"]["version"])
            .path
        )
    )
    manifest = version.manifest
    assert manifest["model"] == MODEL_NAME and manifest["dimension"] == 384
    assert manifest["counts"]["chunks"] == len(version.payloads) == version.vectors.shape[0]
    assert manifest["checks_passed"] and {c["name"] for c in manifest["checks"]} >= {"no_secrets", "dimension"}
    assert np.allclose(np.linalg.norm(version.vectors, axis=1), 1.0, atol=1e-3)
    payload = version.payloads[0]
    assert set(payload) >= {
        "chunk_id",
        "doc_id",
        "doc_version",
        "title",
        "namespace",
        "source_path",
        "location",
        "text",
        "truth_level",
        "tenant_id",
        "pack_id",
        "source_app",
        "lang",
        "updated",
    }
    returns = [p for p in version.payloads if p["source_path"] == POLICY]
    assert returns and returns[0]["doc_id"] == "policies.returns.v1" and returns[0]["truth_level"] == "L1"


def test_rebuild_without_change_embeds_nothing_and_keeps_every_chunk_id(settings, build_corpus):
    _, first = build_corpus(settings)
    _, second = build_corpus(settings)
    for namespace, report in second.items():
        assert report["chunks_embedded"] == 0, namespace
        assert report["version"] == first[namespace]["version"] and not report["promoted"], namespace
        if namespace == "knowledge:uploads":
            continue
        ids = [p["chunk_id"] for p in payloads(settings, namespace, report["version"])]
        assert len(ids) == len(set(ids)) == report["chunks"]


def test_one_file_change_reembeds_only_that_files_new_chunks(settings, corpus, build_corpus):
    _, first = build_corpus(settings)
    before = {p["chunk_id"] for p in payloads(settings, "knowledge:policies", first["knowledge:policies"]["version"])}
    path = corpus / "policies" / "politique-retour.md"
    marker = f"Précision ajoutée par le test {path.stat().st_mtime_ns}."
    path.write_text(path.read_text(encoding="utf-8") + f"\n## Précision\n\n{marker}\n", encoding="utf-8")
    success, second = build_corpus(settings)
    assert success
    policies = second["knowledge:policies"]
    assert policies["promoted"] and policies["version"] != first["knowledge:policies"]["version"]
    after = payloads(settings, "knowledge:policies", policies["version"])
    changed = [p for p in after if p["chunk_id"] not in before]
    assert changed and all(p["source_path"] == POLICY for p in changed)
    # Its unchanged sections get new ids (new doc version) but their texts are cached: only the new one is embedded.
    assert policies["chunks_embedded"] == 1
    assert any(marker in p["text"] for p in changed)
    for namespace, report in second.items():
        if namespace != "knowledge:policies":
            assert report["chunks_embedded"] == 0 and not report["promoted"]


def test_rollback_restores_the_previous_version_and_status_reports_it(settings, corpus, build_corpus):
    from knowledge_plane.build.stages import rollback

    _, first = build_corpus(settings, ["knowledge:faq"])
    faq = corpus / "faq" / "livraison.json"
    data = json.loads(faq.read_text(encoding="utf-8"))
    data["items"].append({"question": "Livrez-vous en Corse ?", "answer": "Oui, sous 5 à 7 jours ouvrés."})
    faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    _, second = build_corpus(settings, ["knowledge:faq"])
    v1, v2 = first["knowledge:faq"]["version"], second["knowledge:faq"]["version"]
    assert v1 != v2 and latest(settings, "knowledge:faq") == v2
    result = rollback(BuildContext(settings), "knowledge:faq")
    assert (result["from"], result["to"], result["latest"]) == (v2, v1, v1)
    rows = BuildContext(settings).registry.status(["knowledge:faq"])
    row = next(r for r in rows if r["namespace"] == "knowledge:faq")
    assert row["latest"] == v1 and {v["version"] for v in row["versions"]} == {v1, v2}
    # Rebuilding the same sources does not undo an operator's rollback.
    _, third = build_corpus(settings, ["knowledge:faq"])
    assert not third["knowledge:faq"]["promoted"] and latest(settings, "knowledge:faq") == v1


def test_only_the_newest_three_versions_are_kept(settings, corpus, build_corpus):
    faq = corpus / "faq" / "paiement.json"
    versions = []
    for i in range(4):
        data = json.loads(faq.read_text(encoding="utf-8"))
        data["items"][0]["answer"] += f" Mise à jour {i}."
        faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        _, reports = build_corpus(settings, ["knowledge:faq"])
        versions.append(reports["knowledge:faq"]["version"])
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    kept = [v.version for v in registry.versions("knowledge:faq")]
    assert kept == versions[:0:-1]
    assert not Path(registry.version("knowledge:faq", versions[0]).path).exists()
    assert registry.aliases()["knowledge:faq"] == {"latest": versions[3], "rollback": versions[2]}


def run_events(settings, run_id: str):
    """(check results {check name: {namespace: passed}}, materialized partitions {asset: {namespace:
    metadata}}) as the Dagster instance recorded the run, and the partitions Dagster now marks failed."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    from assets.partitions import namespaces

    checks: dict[str, dict[str, bool]] = {}
    materialized: dict[str, dict[str, dict]] = {}
    with DagsterInstance.from_config(str(settings.paths.dagster_home)) as instance:
        for kind in (DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.ASSET_MATERIALIZATION):
            for record in instance.get_records_for_run(run_id, of_type=kind).records:
                data = record.event_log_entry.dagster_event.event_specific_data
                if kind == DagsterEventType.ASSET_CHECK_EVALUATION:
                    checks.setdefault(data.check_name, {})[data.partition] = data.passed
                else:
                    m = data.materialization
                    materialized.setdefault(m.asset_key.to_user_string(), {})[m.partition] = {
                        k: v.value for k, v in m.metadata.items()
                    }
        status = get_and_update_asset_status_cache_value(instance, AssetKey("index_aliases"), namespaces)
        failed = set(status.deserialize_failed_partition_subsets(namespaces).get_partition_keys())
    return checks, materialized, failed


def test_a_namespace_that_fails_a_check_is_held_back_and_the_others_are_promoted(settings, corpus):
    from knowledge_plane.cli.build import run_build

    _, first, _ = run_build(settings, ["knowledge:faq", "knowledge:guides"])
    first = {r["namespace"]: r for r in first}
    for path in (corpus / "guides").iterdir():
        path.unlink()  # an emptied namespace must not replace a good index with nothing
    data = json.loads((corpus / "faq" / "retours.json").read_text(encoding="utf-8"))
    data["items"][0]["answer"] += " Nouvelle précision."
    (corpus / "faq" / "retours.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    success, reports, run_ids = run_build(settings, ["knowledge:faq", "knowledge:guides"])
    second = {r["namespace"]: r for r in reports}
    assert not success and len(run_ids) == 1  # one run over both namespaces, failed so CI notices
    faq, guides = second["knowledge:faq"], second["knowledge:guides"]
    assert faq["promoted"] and not faq["held_back"] and latest(settings, "knowledge:faq") == faq["version"]
    assert faq["version"] != first["knowledge:faq"]["version"]
    assert guides["held_back"] and not guides["promoted"] and "non_empty" in guides["failed_checks"]
    assert "held back" in guides["reason"] and "non_empty: 0 chunks" in guides["reason"]
    assert latest(settings, "knowledge:guides") == first["knowledge:guides"]["version"]
    # The Dagster UI shows each namespace's check result on its own partition ...
    checks, materialized, failed = run_events(settings, run_ids[0])
    assert checks["non_empty"] == {"knowledge:faq": True, "knowledge:guides": False}
    assert checks["dimension"] == {"knowledge:faq": True, "knowledge:guides": True}
    assert checks["no_namespace_held_back"] == {"knowledge:faq": True, "knowledge:guides": False}
    # ... each partition's materialization carries its own namespace's figures (the emptied one its zeros) ...
    chunks = materialized["document_chunks"]
    assert chunks["knowledge:faq"]["chunks"] == faq["chunks"] > 0 and chunks["knowledge:guides"]["chunks"] == 0
    assert materialized["parsed_documents"]["knowledge:guides"]["documents"] == 0
    assert "non_empty" in materialized["index_versions"]["knowledge:guides"]["failed_checks"].split(", ")
    # ... and the published namespace is materialized, the held-back one is the only failed partition.
    assert set(materialized["index_aliases"]) == {"knowledge:faq"}
    assert failed == {"knowledge:guides"}


def test_a_version_registered_by_a_run_that_then_failed_is_promoted_by_the_next_run(settings, corpus, build_corpus):
    """The run wrote and registered its version, then stopped before index_aliases (a later failure or a
    crash): the next run of the same content must promote it, not call it 'unchanged'."""
    from tests.building import build_until

    _, first = build_corpus(settings, ["knowledge:faq"])
    faq = corpus / "faq" / "livraison.json"
    data = json.loads(faq.read_text(encoding="utf-8"))
    data["items"].append({"question": "Livrez-vous à Monaco ?", "answer": "Oui, sous 3 jours ouvrés."})
    faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    stopped = build_until(settings, "knowledge:faq", "index_versions")  # ... and the run dies here
    [stranded] = stopped.asset_materializations_for_node("index_versions")  # the faq partition's
    stranded = {name: value.value for name, value in stranded.metadata.items()}
    assert stranded["new"] and stranded["checks_passed"]
    assert latest(settings, "knowledge:faq") == first["knowledge:faq"]["version"]
    success, second = build_corpus(settings, ["knowledge:faq"])
    report = second["knowledge:faq"]
    assert success and report["version"] == stranded["version"] and report["promoted"], report
    assert "never been promoted" in report["reason"]
    assert latest(settings, "knowledge:faq") == stranded["version"]


def test_a_corrupted_embedding_cache_is_caught_by_the_unit_norm_check(settings, corpus, build_corpus):
    from knowledge_plane.serving.embedding import EmbeddingCache
    from tests.building import build_until

    _, first = build_corpus(settings, ["knowledge:faq"])
    faq = corpus / "faq" / "livraison.json"
    data = json.loads(faq.read_text(encoding="utf-8"))
    data["items"].append({"question": "Livrez-vous le samedi ?", "answer": "Oui, en point relais."})
    faq.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    # keep the shared cache sound
    private = settings.updated(paths={"cache_dir": settings.paths.data_dir / "private-cache"})
    prepared = build_until(private, "knowledge:faq", "chunk_embeddings")
    cache = EmbeddingCache(private.paths.cache_dir / "embeddings.sqlite")
    chunks = BuildContext(private, run_id=prepared.run_id).stages.read(ChunksRecord, "knowledge:faq").chunks
    cache.put_many(MODEL_NAME, {chunks[0]["text_hash"]: np.full(384, np.nan, dtype=np.float32)})
    success, reports = build_corpus(private, ["knowledge:faq"])
    assert not success and not reports["knowledge:faq"]["promoted"]
    assert "finite_unit_norm" in reports["knowledge:faq"]["reason"]
    assert latest(private, "knowledge:faq") == first["knowledge:faq"]["version"]


def test_bad_input_is_quarantined_in_a_real_build_and_the_rest_promotes(settings, corpus, build_corpus):
    guides = corpus / "guides"
    secrets = fake_secrets()
    bad = {
        "corrompu.docx": b"PK\x03\x04 not a zip",
        "tronque.docx": docx_bytes()[:3000],
        "tronque.pdf": pdf_bytes()[:60],
        "binaire.md": bytes(range(256)) * 4,
        "latin1.md": "# Fiche\n\nPièce".encode("latin-1"),
        "vide.md": b"",
        "entete.md": b"---\ntitle: [oops\n---\n# x\n\ny",
        "faq-cassee.json": b'{"items": [',
        "enorme.md": b"# Gros\n\n" + b"mot " * 40_000,
        **{f"secret-{i}.md": f"# Config\n\n{value}\n".encode() for i, value in enumerate(secrets.values())},
    }
    for name, data in bad.items():
        (guides / name).write_bytes(data)
    (guides / "garantie.pdf").write_bytes(pdf_bytes())
    success, reports = build_corpus(settings.updated(build={"max_file_bytes": 100_000}), ["knowledge:guides"])
    assert success
    report = reports["knowledge:guides"]
    reasons = {q["path"].rsplit("/", 1)[-1]: q["reason"] for q in report["quarantined"]}
    assert reasons == {
        "corrompu.docx": "corrupt-document",
        "tronque.docx": "corrupt-document",
        "tronque.pdf": "corrupt-document",
        "binaire.md": "binary-content",
        "latin1.md": "invalid-utf8",
        "vide.md": "empty-file",
        "entete.md": "invalid-front-matter",
        "faq-cassee.json": "invalid-faq-json",
        "enorme.md": "too-large",
        **{f"secret-{i}.md": "secret-detected" for i in range(len(secrets))},
    }
    assert report["promoted"]
    indexed = payloads(settings, "knowledge:guides", report["version"])
    sources = {p["source_path"].rsplit("/", 1)[-1] for p in indexed}
    assert not sources & set(bad) and "garantie.pdf" in sources
    assert not any(value in p["text"] for p in indexed for value in secrets.values())


def test_the_report_of_a_run_that_stopped_says_where_from_the_runs_own_metadata(settings, build_corpus):
    """The per-namespace report is read from the run's materializations: a stage that crashed leaves the
    namespace unpromoted with the reason, and the figures of the stages that did run."""
    settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    settings.paths.indexes_dir.write_text("not a directory")  # index_versions cannot write any version
    success, reports = build_corpus(settings, ["knowledge:faq"])
    faq = reports["knowledge:faq"]
    assert not success and not faq["promoted"] and not faq["held_back"]
    # the stage's error is the namespace's reason (the run itself goes on for any other namespace)
    assert faq["reason"].startswith("index_versions failed: NotADirectoryError") and faq["version"] is None
    assert faq["documents"] > 0 and faq["chunks"] > 0 and faq["checks"] == []
    assert latest(settings, "knowledge:faq") is None


def test_an_error_in_one_namespace_fails_its_partition_only_and_the_others_are_promoted(settings, corpus):
    """Not a failed check but an exception (here: the namespace's version folder cannot be made): the
    stage reports it for that namespace, the run goes on for the others, and only that partition fails."""
    from knowledge_plane.cli.build import run_build
    from knowledge_plane.domain.ids import namespace_slug

    blocked = settings.paths.indexes_dir / settings.tenant_id / namespace_slug("knowledge:guides")
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a directory")
    success, reports, run_ids = run_build(settings, ["knowledge:faq", "knowledge:guides"])
    by_namespace = {r["namespace"]: r for r in reports}
    assert not success and len(run_ids) == 1
    faq, guides = by_namespace["knowledge:faq"], by_namespace["knowledge:guides"]
    assert faq["promoted"] and latest(settings, "knowledge:faq") == faq["version"]
    assert not guides["promoted"] and latest(settings, "knowledge:guides") is None
    assert guides["reason"].startswith("index_versions failed: ") and "Error" in guides["reason"], guides
    _, materialized, failed = run_events(settings, run_ids[0])
    assert "Error" in materialized["index_versions"]["knowledge:guides"]["error"]
    assert set(materialized["index_aliases"]) == {"knowledge:faq"}
    assert failed == {"knowledge:guides"}
