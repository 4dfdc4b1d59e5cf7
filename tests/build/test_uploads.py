"""Uploads from the bucket: key rules, metadata, packs, quarantine, and their way into the index."""

from __future__ import annotations

import json

import pytest

from knowledge_plane.build.records import ParsedRecord
from knowledge_plane.build.stages import BuildContext
from knowledge_plane.build.uploads import UploadRules, parse_key, scan_uploads
from knowledge_plane.storage.object_store import LocalObjectStore, S3ObjectStore, s3_client
from knowledge_plane.storage.packs import Packs

NOTE = "# Note atelier\n\n## Couple de serrage\n\nLes roues de la Clio III se serrent à 105 N·m.\n".encode()


def rules(max_bytes: int = 10_000, **overrides) -> UploadRules:
    return UploadRules(
        **{
            "tenant_id": "default",
            "max_bytes": max_bytes,
            "max_metadata_bytes": 64 * 1024,
            "known_namespaces": frozenset({"knowledge:uploads", "knowledge:faq"}),
            **overrides,
        }
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("uploads/default/../secret.md", "unsafe"),
        ("uploads/acme/pack-a/doc.md", "unknown tenant 'acme'"),
        ("uploads/default/Pack A/doc.md", "malformed pack id"),
        ("uploads/default/doc.md", "not uploads/<tenant_id>/<pack_id>/<name>"),
    ],
)
def test_bad_keys_are_refused_with_a_reason(key, message):
    with pytest.raises(ValueError, match=message):
        parse_key(key, "default")


def test_scan_reads_metadata_from_the_object_and_its_sidecar(tmp_path):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/note.md", NOTE, {"source_app": "notes", "caller_app": "aurora_nexus_ui"})
    store.put("uploads/default/pack-b/guide.md", NOTE)
    store.put(
        "uploads/default/pack-b/guide.md.meta.json",
        json.dumps({"source_app": "wiki", "workspace": "atelier", "title": "Guide atelier",
                    "tags": "roues, couple"}).encode(),
    )
    store.put("uploads/default/pack-b/empty.md", b"")
    store.put("uploads/default/pack-b/photo.exe", b"MZ")
    store.put("uploads/default/pack-b/big.md", b"x" * 2000)
    store.put("uploads/default/pack-c/elsewhere.md", NOTE, {"namespace": "knowledge:nowhere"})
    store.put("uploads/default/pack-c/bad-app.md", NOTE, {"source_app": "Not Valid!"})
    store.put("uploads/default/pack-c/bad-workspace.md", NOTE, {"source_app": "notes", "workspace": "../x"})
    store.put("uploads/default/Pack C/upper.md", NOTE)
    uploads, refused = scan_uploads(store, rules(1000))
    by_key = {u.key.rsplit("/", 1)[-1]: u for u in uploads}
    assert by_key["note.md"].metadata == {
        "source_app": "notes",
        "caller_app": "aurora_nexus_ui",
        "namespace": "knowledge:uploads",
        "pack_id": "pack-a",
        "max_truth_level": "L4",  # the default grant: knowledge:uploads, at L4 at the strongest
    }
    assert by_key["guide.md"].metadata["tags"] == ["roues", "couple"] and by_key["guide.md"].pack_id == "pack-b"
    assert by_key["guide.md"].metadata["caller_app"] == "unknown"  # absent: the query service's fallback
    assert by_key["guide.md"].metadata["workspace"] == "atelier"
    reasons = {q.path.rsplit("/", 1)[-1]: q.reason for _, q in refused}
    assert reasons == {
        "empty.md": "empty-file",
        "photo.exe": "unsupported-type",
        "big.md": "too-large",
        "elsewhere.md": "invalid-source",
        "bad-app.md": "invalid-source",
        "bad-workspace.md": "invalid-source",
        "upper.md": "invalid-source",
    }


def test_with_the_registry_enforced_an_unknown_or_inactive_caller_app_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/known.md", NOTE, {"caller_app": "aurora_nexus_ui"})
    store.put("uploads/default/pack-a/stranger.md", NOTE, {"caller_app": "stranger_app"})
    store.put("uploads/default/pack-a/anonymous.md", NOTE)
    registered = frozenset({"aurora_nexus_ui", "unknown"})
    uploads, refused = scan_uploads(store, rules(caller_apps=registered))
    assert sorted(u.key.rsplit("/", 1)[-1] for u in uploads) == ["anonymous.md", "known.md"]
    [(_, stranger)] = refused
    assert stranger.reason == "invalid-source" and "ENFORCE_CALLER_APP_REGISTRY" in stranger.detail
    # `unknown` itself deactivated: an upload naming no caller app is refused too
    _, refused = scan_uploads(store, rules(caller_apps=frozenset({"aurora_nexus_ui"})))
    assert sorted(q.path.rsplit("/", 1)[-1] for _, q in refused) == ["anonymous.md", "stranger.md"]
    # not enforced: any well-formed name goes
    assert len(scan_uploads(store, rules())[0]) == 3


def test_uploads_into_a_disabled_pack_are_refused(tmp_path):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/note.md", NOTE)
    uploads, refused = scan_uploads(store, rules(disabled_packs=frozenset({"pack-a"})))
    assert uploads == [] and "disabled" in refused[0][1].detail


def test_uploads_are_built_from_s3_with_pack_and_apps_in_the_payload(s3_settings, build_corpus):
    from knowledge_plane.storage.index_store import read_version
    from knowledge_plane.storage.registry import Registry

    store = S3ObjectStore(s3_client(s3_settings.object_store.endpoint_url), s3_settings.object_store.bucket)
    store.put("uploads/default/pack-a/note.md", NOTE,
              {"source_app": "notes", "workspace": "garage", "caller_app": "aurora_nexus_ui"})
    store.put("uploads/default/pack-b/autre.md", b"# Autre\n\nLes plaquettes avant se changent par paire.\n")
    store.put("uploads/default/../evil.md", NOTE)
    success, reports = build_corpus(s3_settings, ["knowledge:uploads"])
    assert success and reports["knowledge:uploads"]["promoted"]
    assert [q["reason"] for q in reports["knowledge:uploads"]["quarantined"]] == ["invalid-source"]
    registry = Registry(s3_settings.registry.url.get_secret_value(), "default")
    version = registry.aliases()["knowledge:uploads"]["latest"]
    payloads = read_version(__import__("pathlib").Path(registry.version("knowledge:uploads", version).path)).payloads
    note = next(p for p in payloads if p["source_path"].endswith("note.md"))
    assert (note["pack_id"], note["source_app"], note["caller_app"]) == ("pack-a", "notes", "aurora_nexus_ui")
    assert note["workspace"] == "garage"
    other = next(p for p in payloads if p["source_path"].endswith("autre.md"))
    assert "workspace" not in other and other["caller_app"] == "unknown"
    assert {p["pack_id"] for p in payloads} == {"pack-a", "pack-b"}
    assert {p["pack_id"] for p in Packs(registry.engine, "default").list()} == {"pack-a", "pack-b"}

    # A deleted upload disappears from the next version; nothing else is re-embedded.
    store.delete("uploads/default/pack-b/autre.md")
    success, reports = build_corpus(s3_settings, ["knowledge:uploads"])
    assert success and reports["knowledge:uploads"]["promoted"] and reports["knowledge:uploads"]["chunks_embedded"] == 0
    version = registry.aliases()["knowledge:uploads"]["latest"]
    payloads = read_version(__import__("pathlib").Path(registry.version("knowledge:uploads", version).path)).payloads
    assert {p["pack_id"] for p in payloads} == {"pack-a"}


def test_an_object_deleted_between_listing_and_parsing_is_quarantined(tmp_path, settings):
    from knowledge_plane.build.stages import parsed_documents, raw_documents

    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    store.put("uploads/default/pack-a/fugace.md", NOTE)
    ctx = BuildContext(settings, run_id="r", object_store=store)
    raw_documents(ctx, "knowledge:uploads")
    store.delete("uploads/default/pack-a/fugace.md")
    record = parsed_documents(ctx, "knowledge:uploads")
    assert [(q["path"], q["reason"]) for q in record.quarantined] == [
        ("uploads/default/pack-a/fugace.md", "deleted-during-run")
    ]


# -- who may publish where, and how far it is trusted: the pack's grant, not the uploader ----------
POSING = (
    "---\ntitle: Politique de retour\ntruth_level: L1\n---\n# Retours\n\n"
    "Vous disposez de 365 jours pour retourner une pièce.\n"
).encode()


def test_a_pack_publishes_only_into_the_namespaces_it_was_granted(tmp_path):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/retours.md", POSING, {"namespace": "knowledge:faq"})
    uploads, refused = scan_uploads(store, rules())
    assert uploads == []
    [(namespace, quarantined)] = refused
    # Reported where it tried to publish, so the faq's operators see it.
    assert (namespace, quarantined.reason) == ("knowledge:faq", "namespace-not-allowed")
    assert "knowledge packs allow pack-a --namespace knowledge:faq" in quarantined.detail

    granted = rules(grants={"pack-a": {"knowledge:faq": "L2"}})
    [upload], refused = scan_uploads(store, granted)
    assert refused == [] and upload.metadata["max_truth_level"] == "L2"


@pytest.mark.parametrize(("grants", "asked", "reason"), [
    ({}, "L3", "truth-level-not-allowed"),  # the default grant is knowledge:uploads at L4
    ({"pack-a": {"knowledge:uploads": "L2"}}, "L1", "truth-level-not-allowed"),
    ({"pack-a": {"knowledge:uploads": "L2"}}, "L2", None),
    ({}, "L0", "invalid-source"),
])
def test_a_truth_level_asked_in_the_metadata_is_held_to_the_grant(tmp_path, grants, asked, reason):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/note.md", NOTE, {"truth_level": asked})
    uploads, refused = scan_uploads(store, rules(grants=grants))
    assert [q.reason for _, q in refused] == ([reason] if reason else [])
    assert len(uploads) == (0 if reason else 1)


@pytest.mark.parametrize(("language", "reason"), [("fr", None), ("en", None), ("fr-FR", "invalid-source"),
                                                  ("de", "invalid-source")])
def test_an_upload_in_a_language_nobody_serves_is_refused_with_its_reason(tmp_path, language, reason):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/note.md", NOTE, {"language": language})
    uploads, refused = scan_uploads(store, rules())
    assert [q.reason for _, q in refused] == ([reason] if reason else [])
    if reason:
        assert f"language must be one of en, fr, got {language!r}" in refused[0][1].detail
    assert len(uploads) == (0 if reason else 1)


def test_metadata_is_capped_in_size_before_it_is_read(tmp_path):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/sidecar.md", NOTE)
    store.put("uploads/default/pack-a/sidecar.md.meta.json", json.dumps({"title": "t" * 70_000}).encode())
    store.put("uploads/default/pack-a/object-meta.md", NOTE, {"title": "t" * 70_000})
    store.put("uploads/default/pack-a/fine.md", NOTE, {"title": "t" * 1000})
    uploads, refused = scan_uploads(store, rules())
    assert {q.path.rsplit("/", 1)[-1]: q.reason for _, q in refused} == {
        "sidecar.md": "metadata-too-large",
        "object-meta.md": "metadata-too-large",
    }
    assert "KNOWLEDGE_MAX_METADATA_BYTES" in refused[0][1].detail
    assert [u.key for u in uploads] == ["uploads/default/pack-a/fine.md"]


@pytest.mark.parametrize("name", ["ligne\nforgée.md", "facture\u202edm.exe.md", "zéro\u200blargeur.md", "a\x1b[31m.md"])
def test_unsafe_object_names_are_refused_and_shown_escaped(tmp_path, name):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put(f"uploads/default/pack-a/{name}", NOTE)
    uploads, [(_, quarantined)] = scan_uploads(store, rules())
    assert uploads == [] and quarantined.reason == "unsafe-file-name"
    assert quarantined.path.isprintable() and "\\" in quarantined.path  # escaped, never raw
    assert quarantined.path == "uploads/default/pack-a/" + name.encode("unicode_escape").decode().replace(
        "\\xe9", "é"
    )


# -- the parse stage: front matter, extracted text, corpus sidecars and names ---------------------
def parse_uploads(settings, namespace: str = "knowledge:uploads") -> ParsedRecord:
    from knowledge_plane.build.stages import parsed_documents, raw_documents

    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    ctx = BuildContext(settings, run_id="r", object_store=store)
    raw_documents(ctx, namespace)
    return parsed_documents(ctx, namespace)


def test_front_matter_cannot_claim_more_trust_than_the_grant(settings):
    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    store.put("uploads/default/pack-a/retours.md", POSING, {"namespace": "knowledge:faq"})
    store.put("uploads/default/pack-a/sans-niveau.md", NOTE, {"namespace": "knowledge:faq"})
    packs = BuildContext(settings).packs
    packs.create("pack-a")
    packs.allow("pack-a", "knowledge:faq", "L2")
    record = parse_uploads(settings, "knowledge:faq")
    refused = {q["path"]: q for q in record.quarantined}
    assert refused["uploads/default/pack-a/retours.md"]["reason"] == "truth-level-not-allowed"
    assert "front matter asks for truth level L1" in refused["uploads/default/pack-a/retours.md"]["detail"]
    # An upload that asks nothing gets its grant's level; the corpus' own documents are not affected.
    levels = {d["source_path"]: d["truth_level"] for d in record.documents}
    assert levels["uploads/default/pack-a/sans-niveau.md"] == "L2"
    assert {levels[f"knowledge/faq/{name}.json"] for name in ("retours", "livraison", "paiement")} == {"L2"}

    packs.allow("pack-a", "knowledge:faq", "L1")  # an operator's decision: the next build takes it
    record = parse_uploads(settings, "knowledge:faq")
    levels = {d["source_path"]: d["truth_level"] for d in record.documents}
    assert levels["uploads/default/pack-a/retours.md"] == "L1" and record.quarantined == []


def test_an_upload_without_a_grant_is_l4(settings):
    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    store.put("uploads/default/pack-a/note.md", NOTE)
    [doc] = parse_uploads(settings).documents
    assert doc["truth_level"] == "L4"


def test_extracted_text_is_capped_and_the_cap_is_a_setting(settings):

    long_text = "# Guide\n\n" + "\n\n".join(f"Paragraphe {i} sur le freinage." for i in range(400))
    (settings.paths.corpus_dir / "guides" / "long.md").write_text(long_text, encoding="utf-8")

    def parsed(limit: int) -> dict:
        from knowledge_plane.build.stages import parsed_documents, raw_documents

        ctx = BuildContext(settings.updated(build={"max_text_chars": limit}), run_id="r")
        raw_documents(ctx, "knowledge:guides")
        record = parsed_documents(ctx, "knowledge:guides")
        return {q["path"]: q for q in record.quarantined} | {d["source_path"]: d for d in record.documents}

    small = parsed(5_000)["knowledge/guides/long.md"]
    assert small["reason"] == "text-too-large" and "KNOWLEDGE_MAX_TEXT_CHARS" in small["detail"]
    assert "doc_id" in parsed(50_000)["knowledge/guides/long.md"]  # raised: parsed again, not the stale refusal
    assert parsed(5_000)["knowledge/guides/long.md"]["reason"] == "text-too-large"  # lowered: refused from cache


def test_a_docx_expanding_past_the_cap_is_quarantined(settings):

    from tests.documents import docx_bytes

    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    store.put("uploads/default/pack-a/montage.docx", docx_bytes())
    [quarantined] = parse_uploads(settings.updated(build={"max_text_chars": 100})).quarantined
    assert quarantined["reason"] == "text-too-large"


def test_a_corpus_sidecar_over_the_cap_quarantines_its_document(settings):
    sidecar = settings.paths.corpus_dir / "faq" / "retours.json.meta.json"
    sidecar.write_text(json.dumps({"tags": ["x" * 100] * 1000}), encoding="utf-8")
    record = parse_uploads(settings, "knowledge:faq")
    assert [(q["path"], q["reason"]) for q in record.quarantined] == [
        ("knowledge/faq/retours.json", "metadata-too-large")
    ]
    assert len(record.documents) == 2


def test_corpus_files_with_unsafe_names_are_quarantined_with_escaped_paths(settings):
    guides = settings.paths.corpus_dir / "guides"
    (guides / "ligne\nforgée.md").write_text("# Faux\n\nTexte.\n", encoding="utf-8")
    (guides / "rapport\u202egpj.md").write_text("# Faux\n\nTexte.\n", encoding="utf-8")
    (guides / "vide\n.md").write_text("", encoding="utf-8")  # refused for being empty, still shown escaped
    record = parse_uploads(settings, "knowledge:guides")
    quarantined = {q["path"]: q["reason"] for q in record.quarantined}
    assert quarantined == {
        "knowledge/guides/ligne\\nforgée.md": "unsafe-file-name",
        "knowledge/guides/rapport\\u202egpj.md": "unsafe-file-name",
        "knowledge/guides/vide\\n.md": "empty-file",
    }
    assert not any("\n" in d["source_path"] or "\u202e" in d["source_path"] for d in record.documents)


# -- knowledge upload refuses up front what the build would refuse -------------------------------
@pytest.fixture
def cli_env(settings, monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(settings.paths.data_dir))
    monkeypatch.setenv("KNOWLEDGE_CORPUS_DIR", str(settings.paths.corpus_dir))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", settings.registry.url.get_secret_value())
    return LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)


def upload(capsys, path, *args: str) -> tuple[int, dict]:
    from knowledge_plane.cli.main import main

    code = main(["upload", str(path), "--pack-id", "pack-a", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("content", "args", "reason"), [
    pytest.param(NOTE, ("--namespace", "knowledge:faq"), "namespace-not-allowed", id="customer-namespace"),
    pytest.param(NOTE, ("--truth-level", "L1"), "truth-level-not-allowed", id="truth-level-option"),
    pytest.param(POSING, (), "truth-level-not-allowed", id="truth-level-front-matter"),
    pytest.param(NOTE, ("--source-app", "Not Valid!"), "invalid-source", id="bad-source-app"),
    pytest.param(NOTE, ("--namespace", "knowledge:nowhere"), "invalid-source", id="unknown-namespace"),
    pytest.param(NOTE, ("--name", "note\nforgée.md"), "unsafe-file-name", id="newline-name"),
    pytest.param(NOTE, ("--name", "note\u202edm.exe"), "unsafe-file-name", id="bidi-name"),
    pytest.param(NOTE, ("--title", "t" * 70_000), "metadata-too-large", id="huge-title"),
    pytest.param(b"---\ntitle: [\n---\n", (), "invalid-front-matter", id="bad-front-matter"),
    pytest.param(b"", (), "empty-file", id="empty"),
])
def test_upload_refuses_what_the_build_would_refuse(cli_env, capsys, tmp_path, content, args, reason):
    path = tmp_path / "note.md"
    path.write_bytes(content)
    code, out = upload(capsys, path, *args)
    assert code == 1 and out["error"].startswith(f"refused ({reason}): ")
    assert list(cli_env.list("uploads/")) == []  # nothing was put in the bucket


def test_packs_allow_lets_an_upload_publish_into_a_customer_namespace(cli_env, capsys, tmp_path):
    from knowledge_plane.cli.main import main

    path = tmp_path / "retours.md"
    path.write_bytes(POSING)
    assert main(["packs", "create", "pack-a"]) == 0
    capsys.readouterr()
    assert main(["packs", "allow", "pack-a", "--namespace", "knowledge:faq", "--max-truth-level", "L2",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["may_publish"] == {"knowledge:uploads": "L4", "knowledge:faq": "L2"}
    code, out = upload(capsys, path, "--namespace", "knowledge:faq")
    assert code == 1 and "asks for truth level L1" in out["error"]
    code, out = upload(capsys, path, "--namespace", "knowledge:faq", "--truth-level", "L2")
    assert code == 0 and out["metadata"] == {"namespace": "knowledge:faq", "truth_level": "L2"}
    assert main(["packs", "list", "--json"]) == 0
    [pack] = json.loads(capsys.readouterr().out)
    assert pack["may_publish"] == {"knowledge:uploads": "L4", "knowledge:faq": "L2"}
    assert main(["packs", "revoke", "pack-a", "--namespace", "knowledge:faq"]) == 0
    assert main(["packs", "revoke", "pack-a", "--namespace", "knowledge:faq"]) == 1
    assert main(["packs", "allow", "pack-z", "--namespace", "knowledge:faq"]) == 1  # unknown pack
    assert main(["packs", "allow", "pack-a", "--namespace", "internal:code"]) == 1  # never an internal one


# -- end to end: one `knowledge build` (a Dagster run in its own process) over hostile uploads ----
def test_a_build_survives_hostile_uploads_and_prints_nothing_raw(settings):
    from knowledge_plane.storage.index_store import read_version
    from knowledge_plane.storage.registry import Registry
    from tests.test_cli import knowledge

    store = LocalObjectStore(settings.paths.objects_dir, settings.object_store.bucket)
    # Titles of 254 word pieces ("brake" is one: the model's window less [CLS] and [SEP], which
    # crashed every build) and of 400 (which dropped the document).
    for pieces, text in ((254, "Les plaquettes avant se changent par paire."), (400, "Purger le liquide de frein.")):
        store.put(f"uploads/default/pack-a/titre-{pieces}.txt", text.encode())
        sidecar = json.dumps({"title": " ".join(["brake"] * pieces)}).encode()
        store.put(f"uploads/default/pack-a/titre-{pieces}.txt.meta.json", sidecar)
    store.put("uploads/default/pack-a/retours.md", POSING, {"namespace": "knowledge:faq"})
    store.put("uploads/default/pack-a/note\nquarantined lol.md", NOTE)
    store.put("uploads/default/pack-a/facture\u202edm.exe.md", NOTE)

    result = knowledge(settings, "build", "--namespace", "knowledge:faq", "--namespace", "knowledge:uploads", "--json")
    assert result.returncode == 0, result.stderr
    reports = {r["namespace"]: r for r in json.loads(result.stdout)["namespaces"]}
    uploads = reports["knowledge:uploads"]
    assert uploads["promoted"] and uploads["documents"] == 2  # neither long title is lost
    assert {(q["path"], q["reason"]) for q in uploads["quarantined"]} == {
        ("uploads/default/pack-a/note\\nquarantined lol.md", "unsafe-file-name"),
        ("uploads/default/pack-a/facture\\u202edm.exe.md", "unsafe-file-name"),
    }
    assert [(q["path"], q["reason"]) for q in reports["knowledge:faq"]["quarantined"]] == [
        ("uploads/default/pack-a/retours.md", "namespace-not-allowed")
    ]
    registry = Registry(settings.registry.url.get_secret_value(), "default")
    faq = registry.version("knowledge:faq", registry.aliases()["knowledge:faq"]["latest"])
    payloads = read_version(__import__("pathlib").Path(faq.path)).payloads
    assert not any("365 jours" in p["text"] or p["source_path"].startswith("uploads/") for p in payloads)

    text = knowledge(settings, "build", "--namespace", "knowledge:uploads").stdout
    assert "quarantined uploads/default/pack-a/note\\nquarantined lol.md: unsafe-file-name" in text
    assert "\u202e" not in text and not any(line.startswith("quarantined lol") for line in text.splitlines())
