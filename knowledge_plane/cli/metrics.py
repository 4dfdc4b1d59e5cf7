"""``knowledge metrics``: the build plane's figures for Prometheus, read from the registry and the fact store.

Printed once in the text exposition format (for node-exporter's textfile collector or a cron job),
or, with ``--port``, served at ``/metrics`` and read again at every scrape. Labels are namespaces
and fixed sets (fact statuses, relation kinds): bounded.

    knowledge_build_last_success_timestamp_seconds{namespace}  newest version that passed its checks
    knowledge_build_last_failed{namespace}             1 when the newest version failed its checks
    knowledge_index_chunks / _documents{namespace}     what @latest holds
    knowledge_documents_quarantined{namespace}         quarantined by the newest build
    knowledge_alias_moves_total{namespace,action}      promotions and rollbacks (alias_events)
    knowledge_facts{status}                            proposed (pending review), approved, conflicted…
    knowledge_fact_relations_open{kind}                open CONTRADICTS… relations
    knowledge_fact_drift_percent{namespace}            the drift check of each @latest version
    knowledge_fact_store_probe_seconds{backend}        histogram: one small read (a fact-id lookup) timed
                                                       at each scrape, on the configured store (sql, neo4j)
    knowledge_exporter_errors{part}                    1 when a part could not be read (the others still are)

The probe histogram accumulates across the scrapes of one ``--port`` process, so that Prometheus can
take its p95 over a window (the "fact store p95 above 100 ms" alert); printed once, it holds one sample.

The embedding cache's hit rate is per run, not in the registry: it is the ``chunk_embeddings``
asset's metadata (chunks encoded / cached) in Dagster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import click

from knowledge_plane.cli.commands import command

log = logging.getLogger("knowledge.metrics")
# around the alert's 100 ms, from a local SQLite read (well under 1 ms) to a stalled server
PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
PROBE_ID_PREFIX = "probe:"  # no fact id starts so: the lookup walks the id index and returns nothing


def register(root: click.Group) -> None:
    root.add_command(command(
        "metrics", cmd_metrics, "Print the build plane's Prometheus metrics (registry, facts, drift), or serve them.",
        click.Option(["--port"], type=click.IntRange(0, 65535), help="Serve them at http://<address>:PORT/metrics."),
        click.Option(["--address"], default="127.0.0.1", show_default=True, help="Address to serve them on."),
    ))


class BuildPlaneCollector:
    """Reads the figures at each collection (a prometheus_client custom collector)."""

    def __init__(self, settings: Any):
        from prometheus_client import Histogram

        self.settings = settings
        # not registered anywhere: collect() yields it after observing, so each scrape carries its own probe
        self.probe = Histogram("knowledge_fact_store_probe_seconds",
                               "Time of a small read on the fact store (a fact-id lookup), one per scrape",
                               labelnames=["backend"], buckets=PROBE_BUCKETS, registry=None)

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from knowledge_plane.facts.store import open_fact_store

        errors = GaugeMetricFamily("knowledge_exporter_errors", "1 when a part of the figures could not be read",
                                   labels=["part"])
        with ExitStack() as stack:
            # One fact store per scrape, opened by the first part that needs it (a Neo4j driver's handshake
            # costs seconds) and shared by the others; a store that cannot be opened fails each of them.
            opened: list[Any] = []

            def store() -> Any:
                if not opened:
                    opened.append(stack.enter_context(open_fact_store(self.settings)))
                return opened[0]

            self._store = store
            for part, read in (("registry", self._registry), ("facts", self._facts), ("drift", self._drift),
                               ("fact_store_probe", self._probe)):
                try:
                    families = list(read(GaugeMetricFamily, CounterMetricFamily))
                except Exception:  # one unreachable store must not hide the others' figures
                    log.exception("could not read the %s figures", part)
                    errors.add_metric([part], 1)
                    continue
                errors.add_metric([part], 0)
                yield from families
        yield errors

    def _registry(self, gauge: Any, counter: Any) -> Iterable[Any]:
        import sqlalchemy as sa

        from knowledge_plane.storage.registry import LATEST, Registry, alias_events

        registry = Registry(self.settings.registry.url.get_secret_value(), self.settings.tenant_id)
        try:
            success = gauge("knowledge_build_last_success_timestamp_seconds",
                            "When the newest version that passed its checks was built", labels=["namespace"])
            failed = gauge("knowledge_build_last_failed", "1 when the newest version failed its checks",
                           labels=["namespace"])
            chunks = gauge("knowledge_index_chunks", "Chunks in the @latest version", labels=["namespace"])
            documents = gauge("knowledge_index_documents", "Documents in the @latest version", labels=["namespace"])
            quarantined = gauge("knowledge_documents_quarantined", "Documents quarantined by the newest build",
                                labels=["namespace"])
            aliases = registry.aliases()
            for namespace in registry.namespaces():
                versions = registry.versions(namespace, include_deleted=True)
                if not versions:
                    continue
                newest = versions[0]
                passed = [v for v in versions if v.checks_passed]
                if passed:
                    success.add_metric([namespace], passed[0].created_at.timestamp())
                failed.add_metric([namespace], 0 if newest.checks_passed else 1)
                quarantined.add_metric([namespace], newest.manifest.get("counts", {}).get("quarantined", 0))
                latest = aliases.get(namespace, {}).get(LATEST)
                record = next((v for v in versions if v.version == latest), None)
                if record is not None:
                    chunks.add_metric([namespace], record.chunks)
                    documents.add_metric([namespace], record.documents)
            moves = counter("knowledge_alias_moves", "Alias moves (promote, manual-promote, rollback)",
                            labels=["namespace", "action"])
            with registry.engine.connect() as db:
                rows = db.execute(sa.select(alias_events.c.namespace, alias_events.c.action, sa.func.count())
                                  .where(alias_events.c.tenant_id == registry.tenant_id)
                                  .group_by(alias_events.c.namespace, alias_events.c.action))
                for namespace, action, count in rows:
                    moves.add_metric([namespace, action], count)
        finally:
            registry.engine.dispose()
        yield from (success, failed, chunks, documents, quarantined, moves)

    def _facts(self, gauge: Any, _counter: Any) -> Iterable[Any]:
        from knowledge_plane.facts.model import OPEN, RELATION_KINDS, STATUSES

        facts = gauge("knowledge_facts", "Facts by status (proposed: pending review)", labels=["status"])
        relations = gauge("knowledge_fact_relations_open", "Open relations between facts", labels=["kind"])
        store = self._store()
        counts = store.count_facts(self.settings.tenant_id, "status")
        for status in STATUSES:
            facts.add_metric([status], counts.get(status, 0))
        open_relations = store.list_relations(self.settings.tenant_id, status=OPEN)
        for kind in RELATION_KINDS:
            relations.add_metric([kind], sum(1 for r in open_relations if r.kind == kind))
        yield from (facts, relations)

    def _drift(self, gauge: Any, _counter: Any) -> Iterable[Any]:
        from knowledge_plane.facts.drift_check import drift_check

        drift = gauge("knowledge_fact_drift_percent", "Drift between @latest's fact references and the fact store",
                      labels=["namespace"])
        for report in drift_check(self.settings, store=self._store()):
            drift.add_metric([report["namespace"]], report["drift_pct"])
        yield drift


    def _probe(self, _gauge: Any, _counter: Any) -> Iterable[Any]:
        store = self._store()
        store.match_ids(self.settings.tenant_id, PROBE_ID_PREFIX, limit=1)  # warms the connection (not timed)
        started = time.perf_counter()
        store.match_ids(self.settings.tenant_id, PROBE_ID_PREFIX, limit=1)
        self.probe.labels(self.settings.facts.store).observe(time.perf_counter() - started)
        yield from self.probe.collect()


def cmd_metrics(args: SimpleNamespace) -> int:
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    registry = CollectorRegistry()
    registry.register(BuildPlaneCollector(args.settings))
    if args.port is None:
        click.echo(generate_latest(registry).decode("utf-8"), nl=False)
        return 0
    server, _thread = start_http_server(args.port, args.address, registry=registry)
    click.echo(f"serving the build plane's metrics at http://{args.address}:{server.server_port}/metrics", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0
