"""Retries for calls to remote stores (Qdrant, Weaviate, S3, Neo4j), with ``tenacity``.

One policy for every adapter: exponential backoff with full jitter, a bounded number of attempts
and a deadline, a warning logged before each retry. Only transient failures are retried — the
connection refused or reset, a timeout, HTTP 5xx or 429, a Neo4j error the driver calls retryable —
never a 4xx or a validation error, which would fail the same way again. Each store says which of
its errors are transient (the ``*_transient`` predicates below, on the clients' own exception
types); the adapters make every retried call idempotent (upserts by id, "create unless present",
alias moves to a named target), so a retry after a write that landed but whose answer was lost
changes nothing.

Where a client library has a retry loop of its own (botocore, the Neo4j driver's managed
transactions), the adapter turns it off so that this policy is the one layer: attempts do not
multiply and every retry is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import tenacity

log = logging.getLogger(__name__)

# The defaults of the settings' ``retries`` section (KNOWLEDGE_RETRY_*): a remote write gives up after 5
# attempts or 30 s.
DEFAULT_ATTEMPTS = 5
DEFAULT_DEADLINE_S = 30.0
DEFAULT_INITIAL_WAIT_S = 0.5
DEFAULT_MAX_WAIT_S = 8.0

# The query service answers a person waiting: a search gives up sooner than a build's write.
QUERY_ATTEMPTS = 3
QUERY_DEADLINE_S = 5.0
QUERY_MAX_WAIT_S = 1.0

RETRYABLE_HTTP_STATUS = frozenset({408, 429, 500, 502, 503, 504})

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure; ``attempts=1`` turns retries off."""

    attempts: int = DEFAULT_ATTEMPTS
    deadline_s: float = DEFAULT_DEADLINE_S
    initial_wait_s: float = DEFAULT_INITIAL_WAIT_S
    max_wait_s: float = DEFAULT_MAX_WAIT_S

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"a retry policy needs at least 1 attempt, got {self.attempts}")

    def call(self, what: str, transient: Callable[[BaseException], bool], fn: Callable[P, T],
             *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, retried while it raises an error ``transient`` accepts.

        ``what`` names the operation in the log ("qdrant upsert KP_…"). The last error is raised
        as is once the attempts or the deadline are spent, so callers see the client's own exception.
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts) | tenacity.stop_after_delay(self.deadline_s),
            wait=tenacity.wait_random_exponential(multiplier=self.initial_wait_s, max=self.max_wait_s),
            retry=tenacity.retry_if_exception(transient),
            before_sleep=_log_retry(what, self.attempts),
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)


def query_policy() -> RetryPolicy:
    """The policy of the query service's reads (read-only backends): few attempts, a short deadline."""
    return RetryPolicy(attempts=QUERY_ATTEMPTS, deadline_s=QUERY_DEADLINE_S, max_wait_s=QUERY_MAX_WAIT_S)


def _log_retry(what: str, attempts: int) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (attempt %d of %d): %s: %s; retrying in %.2f s", what, state.attempt_number,
                    attempts, type(error).__name__, error, wait)

    return before_sleep


def _status_transient(status: int | None) -> bool:
    return status is not None and status in RETRYABLE_HTTP_STATUS


def _httpx_transient(exc: BaseException) -> bool:
    import httpx

    # Connect/read/write errors and timeouts; not httpx.HTTPStatusError, which the clients wrap.
    return isinstance(exc, httpx.TransportError)


def qdrant_transient(exc: BaseException) -> bool:
    """qdrant-client over HTTP: the transport failed (wrapped in ResponseHandlingException), or 5xx/429."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, ResponseHandlingException):
        source = getattr(exc, "source", None)
        # A body that does not parse as the expected model is not going to parse next time either.
        return source is None or _httpx_transient(source) or isinstance(source, (ConnectionError, TimeoutError))
    if isinstance(exc, UnexpectedResponse):
        return _status_transient(exc.status_code)
    return _httpx_transient(exc)


def weaviate_transient(exc: BaseException) -> bool:
    """weaviate-client v4: lost connection or timeout, 5xx/429 over HTTP, UNAVAILABLE-like gRPC codes."""
    from weaviate.exceptions import (
        UnexpectedStatusCodeError,
        WeaviateConnectionError,
        WeaviateGRPCUnavailableError,
        WeaviateTimeoutError,
    )

    if isinstance(exc, (WeaviateConnectionError, WeaviateTimeoutError, WeaviateGRPCUnavailableError)):
        return True
    if isinstance(exc, UnexpectedStatusCodeError):
        # Over gRPC the client stores the gRPC status number: 4 DEADLINE_EXCEEDED, 8 RESOURCE_EXHAUSTED,
        # 14 UNAVAILABLE; those numbers are no HTTP status, so they cannot be confused with one.
        return _status_transient(exc.status_code) or exc.status_code in (4, 8, 14)
    return _httpx_transient(exc)


def s3_transient(exc: BaseException) -> bool:
    """botocore: the endpoint unreachable, the connection dropped or timed out; 5xx, 429 or throttling."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return _status_transient(status) or error.get("Code") in ("SlowDown", "Throttling", "RequestTimeout")
    return False


def neo4j_transient(exc: BaseException) -> bool:
    """The Neo4j driver: ServiceUnavailable, SessionExpired, TransientError (the driver's ``is_retryable``),
    a connection not acquired in time, or a commit whose outcome is unknown (the store's statements
    are idempotent, so running one again is safe)."""
    from neo4j.exceptions import ConnectionAcquisitionTimeoutError, DriverError, IncompleteCommit, Neo4jError

    if isinstance(exc, (IncompleteCommit, ConnectionAcquisitionTimeoutError)):
        return True
    return isinstance(exc, (Neo4jError, DriverError)) and exc.is_retryable()
