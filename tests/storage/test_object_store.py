"""One contract for the local object store and a real S3-compatible server; S3 calls retried when the
connection drops."""

from __future__ import annotations

import logging

import pytest

from knowledge_plane.storage.object_store import LocalObjectStore, ObjectMissing, S3ObjectStore, s3_client
from knowledge_plane.storage.retries import RetryPolicy, s3_transient
from tests.flaky_proxy import FlakyProxy


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


# -- retries: S3 through a loopback proxy that drops connections ---------------------------------
FAST = RetryPolicy(attempts=5, deadline_s=30, initial_wait_s=0.01, max_wait_s=0.05)


@pytest.fixture
def flaky_s3(s3_settings):
    """(store, proxy): the S3 store reaching the server through a FlakyProxy, retrying fast."""
    from urllib.parse import urlsplit

    upstream = urlsplit(s3_settings.object_store.endpoint_url)
    with FlakyProxy(upstream.port) as proxy:
        client = s3_client(f"{upstream.scheme}://127.0.0.1:{proxy.port}")
        yield S3ObjectStore(client, s3_settings.object_store.bucket, retry=FAST), proxy


def test_s3_calls_survive_dropped_connections_and_log_each_retry(flaky_s3, caplog):
    store, proxy = flaky_s3
    proxy.fail_next(2)
    with caplog.at_level(logging.WARNING, logger="knowledge_plane.storage.retries"):
        store.put("uploads/default/p/a.md", b"# A", {"source_app": "notes"})
    assert proxy.dropped == 2
    retries = [r.getMessage() for r in caplog.records]
    assert len(retries) == 2 and all(m.startswith(f"s3 put_object s3://{store.bucket}/uploads/") for m in retries)
    assert "attempt 1 of 5" in retries[0] and "attempt 2 of 5" in retries[1]
    # The write landed once: the object is there, whole, with its metadata.
    assert store.head("uploads/default/p/a.md").metadata == {"source_app": "notes"}

    for fail in (lambda: store.get("uploads/default/p/a.md"), lambda: [o.key for o in store.list("uploads/")]):
        store.client.close()  # drop the pooled connection: the next call opens a new one, which fails
        proxy.fail_next(1)
        assert fail() in (b"# A", ["uploads/default/p/a.md"])
    assert proxy.dropped == 4


def test_s3_retries_stop_after_the_policys_attempts(flaky_s3):
    store, proxy = flaky_s3
    store.retry = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.02)
    proxy.fail_next(100)
    with pytest.raises(Exception) as raised:
        store.put("uploads/default/p/a.md", b"# A")
    assert s3_transient(raised.value)  # the client's own error, raised once the attempts are spent
    assert proxy.dropped == 3


def test_s3_client_errors_are_not_retried(s3_url, caplog):
    from botocore.exceptions import ClientError

    store = S3ObjectStore(s3_client(s3_url), "kp-no-such-bucket", retry=FAST)
    with caplog.at_level(logging.WARNING, logger="knowledge_plane.storage.retries"), pytest.raises(ClientError):
        store.put("a.md", b"x")  # 404 NoSuchBucket: the same answer every time
    assert caplog.records == []


def _client_error(status: int, code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutObject")


@pytest.mark.parametrize(("status", "code", "transient"), [
    (500, "InternalError", True), (503, "SlowDown", True), (429, "TooManyRequests", True),
    (400, "RequestTimeout", True),  # S3 answers an idle upload with 400 RequestTimeout: worth another try
    (403, "AccessDenied", False), (404, "NoSuchKey", False), (400, "InvalidArgument", False),
])
def test_s3_transient_errors_are_5xx_429_and_throttling(status, code, transient):
    assert s3_transient(_client_error(status, code)) is transient


def test_s3_connection_failures_are_transient():
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    assert s3_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert s3_transient(ConnectionClosedError(endpoint_url="http://127.0.0.1:1"))
    assert s3_transient(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))
    assert not s3_transient(ValueError("bad key"))
