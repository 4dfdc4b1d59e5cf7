"""The query service's Prometheus metrics (on a port of their own) and its one JSON log line per request."""

from __future__ import annotations

import json
import logging

import httpx
from prometheus_client.parser import text_string_to_metric_families

from knowledge_plane.service.logging import json_formatter
from tests.query.support import headers

QUESTION = "Combien de temps ai-je pour retourner une pièce ?"


def scrape(client) -> dict[str, list]:
    """{sample name: [(labels, value)]} read over HTTP from the service's metrics port."""
    port = client.app.state.metrics_server.server_port
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == x for k, x in labels.items()))


def ask(client, actor: str = "support_prod", **extra):
    body = {"question": QUESTION, "caller_app": "aurora_nexus_ui", **extra}
    return client.post("/knowledge/query", json=body, headers=headers(actor))


def test_requests_answers_and_served_versions_are_counted_with_bounded_labels(make_client):
    client = make_client(metrics_port=0, rate_limit_per_minute=3)
    answered = [ask(client) for _ in range(3)]
    assert [r.status_code for r in answered] == [200] * 3
    assert ask(client).status_code == 429
    wrong_key = client.post("/knowledge/query", json={"question": QUESTION}, headers={"X-API-Key": "wrong"})
    assert wrong_key.status_code == 401
    assert client.get("/metrics").status_code == 404, "the API itself does not serve the metrics"

    samples = scrape(client)
    route = "/knowledge/query"
    assert value(samples, "knowledge_http_requests_total", route=route, status="200", actor="support_prod") == 3
    assert value(samples, "knowledge_http_requests_total", route=route, status="401", actor="-") == 1
    assert value(samples, "knowledge_rate_limited_requests_total", route=route) == 1
    # counted against the actor it refused, not as an anonymous request
    assert value(samples, "knowledge_rate_limited_requests_total", route=route, actor="support_prod") == 1
    assert value(samples, "knowledge_http_request_duration_seconds_count", route=route, status="200") == 3
    statuses = {r.json()["status"] for r in answered}
    assert sum(value(samples, "knowledge_query_answers_total", actor="support_prod", caller_app="aurora_nexus_ui",
                     status=s) for s in statuses) == 3
    assert value(samples, "knowledge_query_passages_count", actor="support_prod") == 3
    assert value(samples, "knowledge_query_passages_sum", actor="support_prod") == sum(
        len(r.json()["passages"]) for r in answered)
    assert value(samples, "knowledge_query_confidence_sum", actor="support_prod") == sum(
        r.json()["confidence"] for r in answered)
    served = {labels["namespace"]: labels["version"] for labels, _ in samples["knowledge_serving_version_info"]}
    assert served == client.app.state.service.snapshot.aliases
    assert value(samples, "knowledge_serving_loaded_timestamp_seconds") > 0

    request_ids = {r.headers["x-request-id"] for r in answered}
    for name, rows in samples.items():
        for labels, _ in rows:
            assert QUESTION not in labels.values() and not request_ids & set(labels.values()), (name, labels)


def test_one_json_line_per_request_without_the_question(make_client, caplog):
    client = make_client()
    with caplog.at_level(logging.INFO, logger="knowledge.request"):
        response = ask(client, actor="chatbot_prod")
        client.post("/knowledge/query", json={"question": QUESTION}, headers={"X-API-Key": "wrong"})
    records = [r for r in caplog.records if r.name == "knowledge.request"]
    assert len(records) == 2
    lines = [json_formatter().format(r) for r in records]
    assert all(QUESTION not in line and "\n" not in line for line in lines)
    answered, refused = (json.loads(line) for line in lines)
    assert answered["request_id"] == response.headers["x-request-id"]
    assert (answered["actor"], answered["caller_app"], answered["status"]) == ("chatbot_prod", "aurora_nexus_ui", 200)
    assert answered["route"] == "/knowledge/query" and answered["latency_ms"] > 0
    assert answered["answer"] == response.json()["status"] and answered["level"] == "info"
    assert (refused["actor"], refused["status"]) == ("-", 401) and refused["request_id"] != answered["request_id"]


def test_the_build_plane_exporter_reads_the_registry_and_the_facts(built, monkeypatch, capsys):
    from knowledge_plane.cli.main import main
    from knowledge_plane.storage.registry import LATEST, Registry
    from tests.query.support import registry_url_of

    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(built))
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL", registry_url_of(built))
    assert main(["metrics"]) == 0
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(capsys.readouterr().out):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    assert {labels["part"]: v for labels, v in samples["knowledge_exporter_errors"]} == {
        "registry": 0, "facts": 0, "drift": 0, "fact_store_probe": 0}
    assert value(samples, "knowledge_fact_store_probe_seconds_count", backend="sql") == 1
    registry = Registry(registry_url_of(built), "default")
    aliases = registry.aliases()
    for namespace, named in aliases.items():
        record = registry.version(namespace, named[LATEST])
        assert value(samples, "knowledge_index_chunks", namespace=namespace) == record.chunks
        assert value(samples, "knowledge_build_last_success_timestamp_seconds", namespace=namespace) == (
            record.created_at.timestamp())
        assert value(samples, "knowledge_build_last_failed", namespace=namespace) == 0
        assert value(samples, "knowledge_alias_moves_total", namespace=namespace, action="promote") >= 1
        assert [labels for labels, _ in samples["knowledge_fact_drift_percent"] if labels["namespace"] == namespace]
    assert {labels["status"] for labels, _ in samples["knowledge_facts"]} == {
        "proposed", "approved", "rejected", "conflicted"}


def test_a_second_worker_whose_metrics_port_is_taken_still_starts(caplog):
    """Several uvicorn workers share one KNOWLEDGE_METRICS_PORT: the first serves it; the others start
    all the same (their series are not exported) instead of failing at start-up."""
    from knowledge_plane.service.metrics import ServiceMetrics, exporter

    with exporter(ServiceMetrics(), 0, "127.0.0.1") as first:
        with exporter(ServiceMetrics(), first.server_port, "127.0.0.1") as second:
            assert second is None
    assert "is taken" in caplog.text
