"""Uploads from the bucket: key rules, metadata, packs, quarantine, and their way into the index."""

from __future__ import annotations

import json

import pytest

from core.build import BuildContext
from core.object_store import LocalObjectStore, S3ObjectStore, s3_client
from core.packs import Packs
from core.uploads import UploadRules, parse_key, scan_uploads

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
        json.dumps({"source_app": "wiki", "title": "Guide atelier", "tags": "roues, couple"}).encode(),
    )
    store.put("uploads/default/pack-b/empty.md", b"")
    store.put("uploads/default/pack-b/photo.exe", b"MZ")
    store.put("uploads/default/pack-b/big.md", b"x" * 2000)
    store.put("uploads/default/pack-c/elsewhere.md", NOTE, {"namespace": "knowledge:nowhere"})
    store.put("uploads/default/pack-c/bad-app.md", NOTE, {"source_app": "Not Valid!"})
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
    reasons = {q.path.rsplit("/", 1)[-1]: q.reason for _, q in refused}
    assert reasons == {
        "empty.md": "empty-file",
        "photo.exe": "unsupported-type",
        "big.md": "too-large",
        "elsewhere.md": "invalid-source",
        "bad-app.md": "invalid-source",
    }


def test_uploads_into_a_disabled_pack_are_refused(tmp_path):
    store = LocalObjectStore(tmp_path, "knowledge")
    store.put("uploads/default/pack-a/note.md", NOTE)
    uploads, refused = scan_uploads(store, rules(disabled_packs=frozenset({"pack-a"})))
    assert uploads == [] and "disabled" in refused[0][1].detail


def test_uploads_are_built_from_s3_with_pack_and_apps_in_the_payload(s3_settings, build_corpus):
    from core.index_store import read_version
    from core.registry import Registry

    store = S3ObjectStore(s3_client(s3_settings.s3_endpoint_url), s3_settings.bucket)
    store.put("uploads/default/pack-a/note.md", NOTE, {"source_app": "notes", "caller_app": "aurora_nexus_ui"})
    store.put("uploads/default/pack-b/autre.md", b"# Autre\n\nLes plaquettes avant se changent par paire.\n")
    store.put("uploads/default/../evil.md", NOTE)
    success, reports = build_corpus(s3_settings, ["knowledge:uploads"])
    assert success and reports["knowledge:uploads"]["promoted"]
    assert [q["reason"] for q in reports["knowledge:uploads"]["quarantined"]] == ["invalid-source"]
    registry = Registry(s3_settings.registry_url, "default")
    version = registry.aliases()["knowledge:uploads"]["latest"]
    payloads = read_version(__import__("pathlib").Path(registry.version("knowledge:uploads", version).path)).payloads
    note = next(p for p in payloads if p["source_path"].endswith("note.md"))
    assert (note["pack_id"], note["source_app"], note["caller_app"]) == ("pack-a", "notes", "aurora_nexus_ui")
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
    from core.build import parsed_documents, raw_documents

    store = LocalObjectStore(settings.objects_dir, settings.bucket)
    store.put("uploads/default/pack-a/fugace.md", NOTE)
    ctx = BuildContext(settings, run_id="r", object_store=store)
    raw_documents(ctx, "knowledge:uploads")
    store.delete("uploads/default/pack-a/fugace.md")
    record = parsed_documents(ctx, "knowledge:uploads")
    assert [(q["path"], q["reason"]) for q in record["quarantined"]] == [
        ("uploads/default/pack-a/fugace.md", "deleted-during-run")
    ]
