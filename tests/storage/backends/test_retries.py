"""Which failures of the vector stores' clients are retried, on the clients' real exception types.

qdrant-client's local mode cannot fail transiently, so the Qdrant backend is also pointed at a port
where nothing listens (connection refused, the client's own ResponseHandlingException) and at a
loopback HTTP server that answers 503 before answering, and 404 for good. No Weaviate server runs
here: its predicate is checked on weaviate-client's exceptions built from real HTTP responses, and
the backend's objects are built on a client that never connects.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from knowledge_plane.storage.retries import RetryPolicy, qdrant_transient, weaviate_transient
from knowledge_plane.storage.vector_backends.qdrant import QdrantBackend
from tests.facts.servers import free_port

FAST = RetryPolicy(attempts=4, deadline_s=30, initial_wait_s=0.01, max_wait_s=0.02)
RETRY_LOG = "knowledge_plane.storage.retries"
# qdrant-client asks a new server for its version; neither the refused port nor the stub tells it.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")


def _response(status: int) -> UnexpectedResponse:
    return UnexpectedResponse(status, "reason", b'{"status": {"error": "x"}}', httpx.Headers())


@pytest.mark.parametrize(("status", "transient"), [
    (500, True), (502, True), (503, True), (504, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (409, False), (422, False),
])
def test_qdrant_http_statuses(status, transient):
    assert qdrant_transient(_response(status)) is transient


def test_qdrant_transport_failures_are_transient_and_bad_bodies_are_not():
    request = httpx.Request("GET", "http://127.0.0.1:1/collections")
    assert qdrant_transient(ResponseHandlingException(httpx.ConnectError("refused", request=request)))
    assert qdrant_transient(ResponseHandlingException(httpx.ReadTimeout("slow", request=request)))
    assert not qdrant_transient(ResponseHandlingException(ValueError("not the expected model")))
    assert not qdrant_transient(ValueError("Collection KP_x not found"))  # what local mode raises


def test_qdrant_calls_to_a_refused_port_stop_after_the_policys_attempts(caplog):
    backend = QdrantBackend.connect(url=f"http://127.0.0.1:{free_port()}", tenant_id="acme", read_only=True,
                                    retry=FAST)
    with caplog.at_level(logging.WARNING, logger=RETRY_LOG), pytest.raises(ResponseHandlingException):
        backend.list_versions("knowledge:faq")
    backend.close()
    messages = [r.getMessage() for r in caplog.records if r.name == RETRY_LOG]
    assert len(messages) == FAST.attempts - 1
    assert all(m.startswith("qdrant get_collections failed") and "Connection refused" in m for m in messages)


@pytest.fixture
def answers() -> Iterator[tuple[list[int], str]]:
    """(statuses, url): a loopback HTTP server answering each GET /aliases with the next status of the
    list (200 with an empty alias list once the list is spent); the list is the test's to fill."""
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self.path.startswith("/aliases"):  # the client's version check, made when it is created
                self._answer(200, {"title": "qdrant", "version": "1.16.0"})
                return
            status = statuses.pop(0) if statuses else 200
            self._answer(status, {"result": {"aliases": []}, "status": "ok", "time": 0.0} if status == 200 else {
                "status": {"error": f"status {status}"}, "time": 0.0})

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield statuses, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_qdrant_503_is_retried_until_the_server_answers(answers, caplog):
    statuses, url = answers
    statuses.extend([503, 502])
    backend = QdrantBackend.connect(url=url, tenant_id="acme", read_only=True, retry=FAST)
    with caplog.at_level(logging.WARNING, logger=RETRY_LOG):
        assert backend.alias_targets(["knowledge:faq"]) == {"knowledge:faq": None}
    backend.close()
    assert len([r for r in caplog.records if r.name == RETRY_LOG]) == 2 and statuses == []


def test_qdrant_404_is_not_retried(answers, caplog):
    statuses, url = answers
    statuses.extend([404, 503])
    backend = QdrantBackend.connect(url=url, tenant_id="acme", read_only=True, retry=FAST)
    with caplog.at_level(logging.WARNING, logger=RETRY_LOG), pytest.raises(UnexpectedResponse):
        backend.alias_targets(["knowledge:faq"])
    backend.close()
    # No retry was logged (only the retry logger counts: qdrant-client's version check of another
    # test's client may log its own HTTP request from a thread meanwhile); one request, the 503 never asked for.
    assert [r for r in caplog.records if r.name == RETRY_LOG] == [] and statuses == [503]


@pytest.mark.parametrize(("status", "transient"), [
    (500, True), (503, True), (429, True), (400, False), (401, False), (404, False), (422, False),
])
def test_weaviate_http_statuses(status, transient):
    from weaviate.exceptions import UnexpectedStatusCodeError

    response = httpx.Response(status, json={"error": [{"message": "x"}]},
                              request=httpx.Request("GET", "http://127.0.0.1:8080/v1/schema"))
    assert weaviate_transient(UnexpectedStatusCodeError("weaviate said", response)) is transient


def test_weaviate_lost_connections_are_transient_and_invalid_input_is_not():
    from weaviate.exceptions import (
        WeaviateConnectionError,
        WeaviateInvalidInputError,
        WeaviateQueryError,
        WeaviateTimeoutError,
    )

    assert weaviate_transient(WeaviateConnectionError("reset"))
    assert weaviate_transient(WeaviateTimeoutError("slow"))
    assert weaviate_transient(httpx.ConnectError("refused"))
    assert not weaviate_transient(WeaviateInvalidInputError("bad vector"))
    assert not weaviate_transient(WeaviateQueryError("no such property", "GRPC"))


def test_retry_policy_needs_one_attempt():
    with pytest.raises(ValueError, match="at least 1 attempt"):
        RetryPolicy(attempts=0)


def test_the_query_service_retries_for_less_time_than_the_build_plane(tmp_path):
    from knowledge_plane.storage.vector_backends import VectorSettings, open_vector_backend

    settings = VectorSettings(backend="qdrant", tenant_id="acme", qdrant_path=str(tmp_path / "qdrant"))
    reader, writer = open_vector_backend(settings, read_only=True), open_vector_backend(settings, read_only=False)
    with reader, writer:
        assert reader.retry.deadline_s < writer.retry.deadline_s
        assert reader.retry.attempts <= writer.retry.attempts
