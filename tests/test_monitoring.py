"""The monitoring as code (deploy/monitoring/): the alert rules load in Prometheus and fire at their
thresholds (``promtool``, from Debian's ``prometheus`` package, when installed), every series the rules
and the dashboard read is one the code exports, and the compose services wire it together."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
EXPORTERS = (ROOT / "knowledge_plane" / "service" / "metrics.py", ROOT / "knowledge_plane" / "cli" / "metrics.py")
SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def exported() -> set[str]:
    """The metric names the query service and the build-plane exporter declare."""
    return {name for path in EXPORTERS for name in re.findall(r'"(knowledge_[a-z_]+)"', path.read_text())}


def series(expr: str) -> set[str]:
    names = set()
    for name in re.findall(r"\b(knowledge_[a-z_]+)\b", expr):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in exported():
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def rules() -> list[dict]:
    return [r for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"] for r in group["rules"]]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_loads_the_rules_and_they_fire_at_their_thresholds():
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run(["promtool", *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_promised_threshold_has_a_rule_on_a_series_the_code_exports():
    by_name = {r["alert"]: r for r in rules()}
    for rule in by_name.values():
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
        assert series(rule["expr"]) <= exported(), rule["alert"]
    promised = {"KnowledgeQueryLatencyHigh": "> 3", "KnowledgeQueryFewPassages": "< 3",
                "KnowledgeQueryConfidenceLow": "< 0.6", "KnowledgeQueryClarificationRateHigh": "> 0.15",
                "KnowledgeFactDriftWarning": "> 1", "KnowledgeFactDriftCritical": "> 5",
                "KnowledgeFactsPendingReview": "> 1000", "KnowledgeFactStoreLatencyHigh": "> 0.1"}
    for name, threshold in promised.items():
        assert by_name[name]["expr"].rstrip().endswith(threshold), name


def test_the_dashboard_reads_exported_series_from_the_provisioned_data_source():
    dashboard = json.loads((MONITORING / "grafana" / "dashboards" / "knowledge-plane.json").read_text())
    source = yaml.safe_load((MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    targets = [t for panel in dashboard["panels"] for t in panel["targets"]]
    assert targets and all(t["datasource"]["uid"] == uid for t in targets)
    read = set().union(*(series(t["expr"]) for t in targets))
    assert read <= exported()
    assert {"knowledge_query_duration_seconds", "knowledge_fact_drift_percent", "knowledge_facts"} <= read


def test_compose_wires_prometheus_to_both_exporters_and_grafana_to_the_files():
    app = yaml.safe_load((ROOT / "docker-compose.app.yml").read_text())["services"]
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]}
    assert targets["knowledge-query"] == f"query:{app['query']['environment']['KNOWLEDGE_METRICS_PORT']}"
    command = app["build-metrics"]["command"]
    assert targets["knowledge-build"] == f"build-metrics:{command[command.index('--port') + 1]}"
    assert "ports" not in app["prometheus"] and "ports" not in app["build-metrics"]
    mounts = {v.split(":")[1]: ROOT / v.split(":")[0] for v in app["prometheus"]["volumes"] if v.startswith("./")}
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"] and mounts["/etc/prometheus/alerts.yml"].is_file()
    grafana = {v.split(":")[1]: ROOT / v.split(":")[0] for v in app["grafana"]["volumes"] if v.startswith("./")}
    provider_file = MONITORING / "grafana" / "provisioning" / "dashboards" / "knowledge-plane.yml"
    provider = yaml.safe_load(provider_file.read_text())
    assert grafana[provider["providers"][0]["options"]["path"]] == MONITORING / "grafana" / "dashboards"
