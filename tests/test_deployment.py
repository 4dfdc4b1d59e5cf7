"""The deployment files: every profile resolves, stores stay internal, runtime gets read-only secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from knowledge_plane.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
INFRA = yaml.safe_load((ROOT / "docker-compose.infra.yml").read_text())
APP = yaml.safe_load((ROOT / "docker-compose.app.yml").read_text())
STORES = {"postgres", "qdrant", "neo4j", "minio", "weaviate"}
PROFILES = {
    "automecanik": {"weaviate", "minio"},
    "aurora": {"postgres", "qdrant", "minio"},
    "sapkb": {"postgres", "qdrant", "neo4j"},
}
APP_SERVICES = {"dagster-code", "dagster-webserver", "dagster-daemon", "query", "console"}


def merged() -> dict:
    """docker compose -f infra -f app: top-level maps merged, services side by side."""
    out: dict = {}
    for doc in (INFRA, APP):
        for key, value in doc.items():
            if isinstance(value, dict):
                out.setdefault(key, {}).update(value)
    return out


def services_for(profile: str) -> dict:
    return {n: s for n, s in merged()["services"].items() if profile in s.get("profiles", [])}


def env_file(profile: str) -> dict[str, str]:
    lines = (ROOT / "deploy" / f"{profile}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_runs_its_stores_and_the_app(profile):
    services = services_for(profile)
    assert set(services) == PROFILES[profile] | APP_SERVICES


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_env_defines_every_required_variable_and_loads(profile, monkeypatch):
    values = env_file(profile)
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.app.yml").read_text()))
    assert required <= set(values), required - set(values)
    assert values["COMPOSE_PROFILES"] == profile
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", "/tmp/knowledge-profile-check")
    settings = Settings()
    assert settings.tenant_id == values["KNOWLEDGE_TENANT_ID"]
    backend = values["KNOWLEDGE_VECTOR_BACKEND"]
    assert {"weaviate": "weaviate", "qdrant": "qdrant"}[backend] in PROFILES[profile]
    if values["KNOWLEDGE_FACT_STORE"] == "neo4j":
        assert "neo4j" in PROFILES[profile]


def test_stores_publish_no_port_and_live_on_an_internal_network():
    compose = merged()
    assert compose["networks"]["stores"]["internal"] is True
    for name in STORES:
        service = compose["services"][name]
        assert "ports" not in service, f"{name} must not publish a port"
        assert service["networks"] == ["stores"]
    assert "--console-address" not in " ".join(compose["services"]["minio"].get("command", "").split())


def test_only_uis_and_api_are_published_and_only_on_loopback():
    published = {n: s["ports"] for n, s in merged()["services"].items() if "ports" in s}
    assert set(published) == {"dagster-webserver", "console", "query"}
    assert all(p.startswith("127.0.0.1:") for ports in published.values() for p in ports)


def test_runtime_gets_read_only_credentials_and_build_secrets_stay_in_the_build_plane():
    services = merged()["services"]
    query = services["query"]
    assert not [s for s in query["secrets"] if s.startswith("build_") or s == "postgres_password"]
    assert all(v.endswith(":ro") for v in query["volumes"])
    for name in ("dagster-code", "dagster-daemon", "console"):
        assert not [s for s in services[name]["secrets"] if s.startswith("runtime_") or s == "knowledge_api_keys"]
    declared = set(merged()["secrets"])
    assert {s for svc in services.values() for s in svc.get("secrets", [])} <= declared


def test_production_dagster_instance_queues_runs_on_postgres():
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.prod.yaml").read_text())
    assert "postgres" in instance["storage"]
    runs = instance["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 1 and runs["tag_concurrency_limits"]


def test_secret_files_are_read_from_FILE_variables(tmp_path, monkeypatch):
    secret = tmp_path / "registry_url"
    secret.write_text(f"sqlite:///{tmp_path}/from-secret.db\n")
    monkeypatch.delenv("KNOWLEDGE_REGISTRY_URL", raising=False)
    monkeypatch.setenv("KNOWLEDGE_REGISTRY_URL_FILE", str(secret))
    assert Settings().registry.url.get_secret_value() == f"sqlite:///{tmp_path}/from-secret.db"


def test_api_keys_are_read_from_a_secret_file(tmp_path, monkeypatch):
    secret = tmp_path / "keys"
    secret.write_text("chatbot_prod=sha256:" + "ab" * 32 + "\n")
    monkeypatch.delenv("KNOWLEDGE_API_KEYS", raising=False)
    monkeypatch.setenv("KNOWLEDGE_API_KEYS_FILE", str(secret))
    assert Settings().service.api_keys.get_secret_value() == "chatbot_prod=sha256:" + "ab" * 32


def test_both_dagster_instances_monitor_runs_so_a_dead_run_frees_the_queue(tmp_path):
    from dagster import DagsterInstance

    for source in (ROOT / "dagster.yaml", ROOT / "deploy" / "dagster.prod.yaml"):
        config = yaml.safe_load(source.read_text())["run_monitoring"]
        assert config["enabled"] and config["max_resume_run_attempts"] == 0
        assert config["start_timeout_seconds"] > 0 and config["max_runtime_seconds"] > 0
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:  # the schema Dagster validates
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
