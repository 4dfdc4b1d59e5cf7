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


def test_after_two_rollbacks_promote_brings_back_the_newest_kept_version(settings, corpus, build_corpus):
    """Roll forward: `knowledge promote` moves @latest to any kept, checked version, audited as an
    operator's move, and a rebuild of the same sources does not undo it."""
    import sqlalchemy as sa

    from knowledge_plane.storage.registry import Registry, alias_events

    versions = []
    for answer in ("Oui, en 48 heures.", "Oui, en 24 heures."):
        _, report = build_corpus(settings, ["knowledge:faq"])
        versions.append(report["knowledge:faq"]["version"])
        edit_faq(corpus, answer)
    _, report = build_corpus(settings, ["knowledge:faq"])
    v1, v2, v3 = *versions, report["knowledge:faq"]["version"]
    assert len({v1, v2, v3}) == 3
    for expected in ((v3, v2), (v2, v1)):
        moved = knowledge(settings, "rollback", "knowledge:faq", "--json")
        assert moved.returncode == 0, moved.stderr
        assert (json.loads(moved.stdout)["from"], json.loads(moved.stdout)["to"]) == expected
    registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
    assert registry.aliases()["knowledge:faq"] == {"latest": v1}  # nothing older to roll back to
    again = knowledge(settings, "rollback", "knowledge:faq", "--json")
    assert again.returncode == 1 and "no @rollback version" in json.loads(again.stdout)["error"]

    forward = knowledge(settings, "promote", "knowledge:faq", v3, "--json")
    assert forward.returncode == 0, forward.stderr
    assert json.loads(forward.stdout) == {"namespace": "knowledge:faq", "from": v1, "to": v3, "latest": v3,
                                          "rollback": v1}
    with registry.engine.connect() as db:
        events = db.execute(sa.select(alias_events.c.action, alias_events.c.latest_before, alias_events.c.latest_after)
                            .where(alias_events.c.namespace == "knowledge:faq").order_by(alias_events.c.id)).all()
    assert [tuple(e) for e in events][-3:] == [("rollback", v3, v2), ("rollback", v2, v1), ("manual-promote", v1, v3)]
    _, rebuilt = build_corpus(settings, ["knowledge:faq"])  # the same sources as v3: nothing to promote
    assert rebuilt["knowledge:faq"]["version"] == v3 and not rebuilt["knowledge:faq"]["promoted"]
    assert registry.aliases()["knowledge:faq"] == {"latest": v3, "rollback": v1}


def test_unknown_and_never_built_namespaces_get_different_messages(settings):
    """Nothing is built: knowledge:faq has a corpus folder (never built), knowledge:nope has nothing."""
    for command in (["rollback", "knowledge:faq"], ["promote", "knowledge:faq", "v20260101-000000-abcdef"]):
        result = knowledge(settings, *command, "--json")
        assert result.returncode == 1
        error = json.loads(result.stdout)["error"]
        assert "knowledge:faq has never been built" in error
        assert "knowledge build --namespace knowledge:faq" in error
    for command in (["rollback", "knowledge:nope"], ["promote", "knowledge:nope", "v20260101-000000-abcdef"]):
        result = knowledge(settings, *command, "--json")
        assert result.returncode == 1
        error = json.loads(result.stdout)["error"]
        assert "unknown namespace 'knowledge:nope'" in error and "knowledge:faq" in error  # the known ones listed


def test_packs_list_on_an_empty_registry_says_how_to_create_one(settings):
    result = knowledge(settings, "packs", "list")
    assert result.returncode == 0, result.stderr
    assert "no packs yet" in result.stdout and "knowledge packs create PACK" in result.stdout
    assert json.loads(knowledge(settings, "packs", "list", "--json").stdout) == []


def test_serve_query_and_status_help_need_no_build_package(tmp_path):
    """`knowledge` registers every command, but a command module imports the build plane (Dagster,
    Docling, spaCy, torch, detect-secrets…) only in its handler: the service image can run the CLI."""
    from tests.test_service_without_build import run_without_build

    result = run_without_build("""
        import contextlib, io, sys
        from knowledge_plane.cli.main import main

        for argv in (["--help"], ["serve", "--help"], ["query", "--help"], ["status", "--help"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    main(argv)
                except SystemExit as exc:  # click's --help exits 0
                    assert not exc.code, exc.code
            assert "Usage: knowledge" in out.getvalue(), argv
        print("heavy:", sorted({m.split(".")[0] for m in sys.modules} & {"numpy", "sqlalchemy", "alembic"}))
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("heavy: []")  # --help costs neither numpy nor the registry
