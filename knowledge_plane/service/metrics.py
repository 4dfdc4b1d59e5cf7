"""Prometheus metrics of the query service, and its one JSON log line per request.

``RequestMetrics`` (ASGI middleware) times every HTTP request and records it under its route
template (``/knowledge/query``, never the raw path), method and status; the query route adds what
its answer was through ``note_answer`` (actor, caller app, answer status, passages, confidence, gate
flags), kept in a context variable for the request, so neither the route nor the middleware has to
know the other. A ``ServingCollector`` reads the served aliases at scrape time.

Labels are bounded: routes are templates, statuses and answer statuses are fixed sets, actors are
the configured API keys' names, caller apps are validated and (when enforced) registered, and
namespaces are the build's partitions. The question, its hash and request ids are never labels.

The series are served by ``start_exporter`` on a port of their own (``KNOWLEDGE_METRICS_PORT``),
which the compose file publishes on the internal network only, never through the public proxy.

The log line (logger ``knowledge.request``, JSON through ``knowledge_plane.service.logging``) holds
the request id, actor, caller app, route, status and latency; never the question.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knowledge_plane.serving.access import Actor
from knowledge_plane.serving.snapshot import Snapshot

log = logging.getLogger("knowledge.request")

ANONYMOUS = "-"  # the actor of a request refused before its key was known (401, some 429s)
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
PASSAGE_BUCKETS = (0, 1, 2, 3, 5, 8, 10, 20)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("knowledge_request", default=None)


def note_actor(actor: Actor) -> None:
    """The request's actor, as soon as its credentials are known: a 429 is then counted against it."""
    noted = _request.get()
    if noted is not None:
        noted["actor"] = actor.name


def note_answer(actor: Actor, caller_app: str, response: dict[str, Any], flags: Iterable[str] = ()) -> None:
    """Attach an answer's figures to the current request (a no-op outside ``RequestMetrics``)."""
    noted = _request.get()
    if noted is not None:
        noted.update(actor=actor.name, caller_app=caller_app, answer=response["status"],
                     passages=len(response["passages"]), confidence=response["confidence"],
                     namespaces=sorted(response["index_versions"]), flags=sorted(flags),
                     request_id=response.get("request_id") or noted["request_id"])


class ServiceMetrics:
    """The service's series, on a registry of their own (one per app, so apps in one process never
    share counters)."""

    def __init__(self, snapshot: Callable[[], Snapshot | None] | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("knowledge_http_requests", "HTTP requests by route, method, status and actor",
                                ["route", "method", "status", "actor"], registry=r)
        self.latency = Histogram("knowledge_http_request_duration_seconds", "HTTP request latency",
                                 ["route", "status", "actor"], buckets=LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("knowledge_rate_limited_requests", "Requests refused with 429",
                                    ["route", "actor"], registry=r)
        self.answers = Counter("knowledge_query_answers", "Answers by actor, caller app and answer status",
                               ["actor", "caller_app", "status"], registry=r)
        self.namespace_answers = Counter("knowledge_query_namespace_answers",
                                         "Answers that searched a namespace, by answer status",
                                         ["namespace", "status"], registry=r)
        self.query_latency = Histogram("knowledge_query_duration_seconds", "Latency of answered queries",
                                       ["actor"], buckets=LATENCY_BUCKETS, registry=r)
        self.passages = Histogram("knowledge_query_passages", "Passages returned per answer", ["actor"],
                                  buckets=PASSAGE_BUCKETS, registry=r)
        self.confidence = Histogram("knowledge_query_confidence", "Confidence of each answer", ["actor"],
                                    buckets=CONFIDENCE_BUCKETS, registry=r)
        self.gate_flags = Counter("knowledge_query_gate_flags", "Answers flagged by a guard (prompt injection…)",
                                  ["flag"], registry=r)
        if snapshot is not None:
            self.registry.register(ServingCollector(snapshot))

    def record(self, route: str, method: str, status: int, seconds: float, noted: dict[str, Any]) -> None:
        actor = noted.get("actor", ANONYMOUS)
        self.requests.labels(route, method, str(status), actor).inc()
        self.latency.labels(route, str(status), actor).observe(seconds)
        if status == 429:
            self.rate_limited.labels(route, actor).inc()
        if "answer" in noted:
            self.answers.labels(actor, noted["caller_app"], noted["answer"]).inc()
            for namespace in noted["namespaces"]:
                self.namespace_answers.labels(namespace, noted["answer"]).inc()
            self.query_latency.labels(actor).observe(seconds)
            self.passages.labels(actor).observe(noted["passages"])
            self.confidence.labels(actor).observe(noted["confidence"])
            for flag in noted["flags"]:
                self.gate_flags.labels(flag).inc()


class ServingCollector(Collector):
    """What the service serves, read at scrape time: one series per namespace and served version
    (``knowledge_serving_version_info``), and the quarantined namespaces. A swap shows as the
    series' version label changing: ``changes(...)`` counts them."""

    def __init__(self, snapshot: Callable[[], Snapshot | None]):
        self.snapshot = snapshot

    def collect(self) -> Iterable[GaugeMetricFamily]:
        served = GaugeMetricFamily("knowledge_serving_version_info", "The version each namespace's answers come from",
                                   labels=["namespace", "version"])
        loaded = GaugeMetricFamily("knowledge_serving_loaded_timestamp_seconds",
                                   "When the served snapshot was loaded (changes at each alias swap)")
        quarantined = GaugeMetricFamily("knowledge_serving_quarantined", "1 for a published namespace not served",
                                        labels=["namespace"])
        snapshot = self.snapshot()
        if snapshot is not None:
            for namespace, version in sorted(snapshot.aliases.items()):
                served.add_metric([namespace, version], 1)
            for namespace in sorted(snapshot.quarantined):
                quarantined.add_metric([namespace], 1)
            loaded.add_metric([], snapshot.loaded_at)
        yield from (served, loaded, quarantined)


class RequestMetrics:
    """ASGI middleware: metrics and one JSON log line for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        noted: dict[str, Any] = {"request_id": uuid.uuid4().hex}
        token = _request.set(noted)
        status = 500  # an exception that escapes every handler ends as a 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers") or [])
                if b"x-request-id" in headers:  # the id the caller sees and the query log holds
                    noted["request_id"] = headers[b"x-request-id"].decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            _request.reset(token)
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"  # a template: bounded
            self.metrics.record(route, scope["method"], status, seconds, noted)
            log.info("request", extra={
                "request_id": noted["request_id"], "actor": noted.get("actor", ANONYMOUS),
                "caller_app": noted.get("caller_app"), "method": scope["method"], "route": route, "status": status,
                "latency_ms": round(seconds * 1000, 3), "answer": noted.get("answer"),
                "passages": noted.get("passages"), "flags": noted.get("flags")})


def instrument(app: Any, snapshot: Callable[[], Snapshot | None]) -> ServiceMetrics:
    """Add ``RequestMetrics`` to a FastAPI app (outermost: a 413 or a 429 is counted too); the
    metrics are ``app.state.metrics``."""
    metrics = ServiceMetrics(snapshot)
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    return metrics


@contextmanager
def exporter(metrics: ServiceMetrics, port: int | None, address: str = "0.0.0.0") -> Iterator[Any]:
    """Serve the metrics on ``port`` (0: any free port) in a thread of their own while the block runs;
    yields the HTTP server (its ``server_port``), or None when ``port`` is None."""
    if port is None:
        yield None
        return
    try:
        server, thread = start_http_server(port, address, registry=metrics.registry)
    except OSError as exc:  # another uvicorn worker of this process group serves the port already
        log.warning("metrics port %s is taken (%s): this worker's series are not exported; run one worker "
                    "per container, or scrape each replica", port, exc.strerror)
        yield None
        return
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
