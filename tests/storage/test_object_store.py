"""One contract for the local object store and a real S3-compatible server."""

from __future__ import annotations

import pytest

from knowledge_plane.storage.object_store import LocalObjectStore, ObjectMissing, S3ObjectStore, s3_client


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects", "knowledge")
    s3_settings = request.getfixturevalue("s3_settings")
    return S3ObjectStore(s3_client(s3_settings.object_store.endpoint_url), s3_settings.object_store.bucket)


def test_put_list_head_get_delete(store):
    store.put("uploads/default/pack-a/b.md", b"# B", {"source_app": "notes"})
    info = store.put("uploads/default/pack-a/a.md", b"# A")
    store.put("exports/x.json", b"{}")
    keys = [o.key for o in store.list("uploads/default/")]
    assert keys == ["uploads/default/pack-a/a.md", "uploads/default/pack-a/b.md"]
    head = store.head("uploads/default/pack-a/b.md")
    assert head.metadata == {"source_app": "notes"} and head.size == 3
    assert info.etag and store.get("uploads/default/pack-a/a.md") == b"# A"
    store.delete("uploads/default/pack-a/a.md")
    with pytest.raises(ObjectMissing):
        store.get("uploads/default/pack-a/a.md")
    with pytest.raises(ObjectMissing):
        store.head("uploads/default/pack-a/a.md")


def test_etag_changes_with_content(store):
    first = store.put("uploads/default/p1/doc.md", b"v1")
    second = store.put("uploads/default/p1/doc.md", b"v2")
    assert first.etag != second.etag


def test_local_store_refuses_keys_that_escape_the_bucket(tmp_path):
    with pytest.raises(ValueError, match="escapes"):
        LocalObjectStore(tmp_path, "knowledge").put("../../etc/x", b"x")
