"""The build-plane exporter times a small read on the fact store at each scrape (the series of the
"fact store p95 above 100 ms" alert), on the SQL store and on a Bolt server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from knowledge_plane.cli.metrics import BuildPlaneCollector
from knowledge_plane.settings import Settings


def scrape(registry: CollectorRegistry) -> dict[str, list]:
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def probe_figures(settings: Settings, scrapes: int) -> dict[str, list]:
    registry = CollectorRegistry()
    registry.register(BuildPlaneCollector(settings))
    for _ in range(scrapes - 1):
        scrape(registry)
    return scrape(registry)


def assert_probed(samples: dict[str, list], backend: str, scrapes: int) -> None:
    assert {labels["part"]: v for labels, v in samples["knowledge_exporter_errors"]}["fact_store_probe"] == 0
    [(labels, count)] = samples["knowledge_fact_store_probe_seconds_count"]
    assert labels == {"backend": backend} and count == scrapes, "one probe per scrape, accumulated"
    [(_, total)] = samples["knowledge_fact_store_probe_seconds_sum"]
    assert 0 < total < 5 * scrapes
    buckets = {labels["le"]: v for labels, v in samples["knowledge_fact_store_probe_seconds_bucket"]}
    assert buckets["0.1"] <= buckets["+Inf"] == scrapes  # the alert's threshold is a bucket bound


def test_the_exporter_times_a_probe_on_the_sql_store(registry_url, tmp_path):
    settings = Settings(paths={"data_dir": tmp_path}, registry={"url": registry_url})
    assert_probed(probe_figures(settings, 3), "sql", 3)


def test_the_exporter_times_a_probe_on_a_bolt_server(bolt_uri, registry_url, tmp_path):
    settings = Settings(paths={"data_dir": tmp_path}, registry={"url": registry_url},
                        facts={"store": "neo4j", "neo4j_uri": bolt_uri})
    # one scrape: each opening of a driver on FalkorDB's Bolt costs ~10 s here (a handshake retry)
    assert_probed(probe_figures(settings, 1), "neo4j", 1)


def test_a_store_that_cannot_be_opened_is_an_exporter_error_not_a_sample(registry_url, tmp_path):
    settings = Settings(paths={"data_dir": tmp_path}, registry={"url": registry_url}, facts={"store": "neo4j"})
    samples = probe_figures(settings, 1)
    assert {labels["part"]: v for labels, v in samples["knowledge_exporter_errors"]}["fact_store_probe"] == 1
    assert "knowledge_fact_store_probe_seconds_count" not in samples

