"""The deployment files: every profile resolves, stores stay internal, runtime gets read-only secrets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
APP_SERVICES = {"dagster-code", "dagster-webserver", "dagster-daemon", "query", "console", "build-metrics",
                "prometheus", "grafana", "redis"}  # redis: the query service's shared rate-limit counters


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
    assert set(published) == {"dagster-webserver", "console", "query", "grafana"}
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


# -- every secret of both compose files is read, and each app service loads as its command does --

# The *_FILE variables the stores' official images read themselves (their documented Docker-secret
# support); Qdrant and Weaviate have none, so their compose entry points read the key files.
IMAGE_FILE_VARIABLES = {
    "postgres": {"POSTGRES_PASSWORD_FILE"},
    "neo4j": {"NEO4J_AUTH_FILE"},
    "minio": {"MINIO_ROOT_PASSWORD_FILE"},
    "grafana": {"GF_SECURITY_ADMIN_PASSWORD__FILE"},  # Grafana reads any GF_<option>__FILE
}
# What each compose secret holds in these tests (the real ones live in ./secrets/, not in Git).
SECRET_VALUES = {
    "postgres_password": "pg-password",
    "minio_root_password": "minio-password",
    "neo4j_auth": "neo4j/neo4j-password",
    "neo4j_password": "neo4j-password",
    "build_s3_secret_key": "s3-build-secret",
    "runtime_s3_secret_key": "s3-runtime-secret",
    "build_vector_key": "vector-build-key",
    "runtime_vector_key": "vector-read-only-key",
    "knowledge_api_keys": "chatbot_prod=sha256:" + "ab" * 32,
    "console_secret": "s" * 40,
    "console_oidc_client_secret": "oidc-client-secret",
    "grafana_admin_password": "grafana-admin-password",
    "query_log_end_user_key": "end-user-hmac-key",
}


def settings_fields() -> dict[str, tuple[str | None, str]]:
    """Variable → (section, field) of every setting."""
    from knowledge_plane.settings import SECTIONS, env_name

    out: dict[str, tuple[str | None, str]] = {env_name(f): (None, n) for n, f in Settings.model_fields.items()
                                              if env_name(f)}
    for section, model in SECTIONS.items():
        out.update({env_name(f): (section, n) for n, f in model.model_fields.items() if env_name(f)})
    return out


def field_value(settings: Settings, section: str | None, name: str):
    value = getattr(settings if section is None else getattr(settings, section), name)
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def interpolate(value: object, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$, from the profile's env file."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if variables.get(name):
            return variables[name]
        assert op != ":?", f"{name} is required: {arg}"
        return arg if op == ":-" else ""

    text = re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, str(value))
    return text.replace("$$", "$")


class Container:
    """A compose service of a profile, without Docker: its environment resolved from the profile's
    env file, its secrets written under a temporary /run/secrets, its volumes as temporary folders."""

    def __init__(self, compose: dict, profile: str, name: str, root: Path):
        self.service = compose["services"][name]
        self.declared = set(compose.get("secrets", {}))
        self.root = root
        (root / "secrets").mkdir(parents=True, exist_ok=True)
        for secret in self.service.get("secrets", []):
            (root / "secrets" / secret).write_text(self.secret_value(secret) + "\n")
        variables = env_file(profile) if profile else {}
        self.environment = {k: self.mounted(interpolate(v, variables))
                            for k, v in (self.service.get("environment") or {}).items()}

    def secret_value(self, secret: str) -> str:
        if secret.endswith("registry_url"):
            return f"sqlite:///{self.root / secret}.db"
        if secret == "console_accounts":
            from knowledge_plane.console.auth import hash_password

            return f"admin:admin:{hash_password('admin password')}"
        return SECRET_VALUES[secret]

    def mounted(self, value: str) -> str:
        """A path inside the container, as the temporary folder that stands for its mount."""
        for inside, outside in (("/run/secrets", "secrets"), ("/opt/dagster/home", "dagster-home"), ("/data", "data")):
            if value == inside or value.startswith(inside + "/"):
                return str(self.root / outside) + value[len(inside):]
        return value

    def secret_of(self, variable: str) -> str:
        """The compose secret a *_FILE variable names; it must be mounted and declared."""
        path = (self.service.get("environment") or {})[variable]
        assert path.startswith("/run/secrets/"), f"{variable}: {path} is not a secret"
        secret = path.removeprefix("/run/secrets/")
        assert secret in self.service.get("secrets", []), f"{variable}: secret {secret} is not mounted"
        assert secret in self.declared, f"{variable}: secret {secret} is not declared"
        return secret

    def run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        """``command`` with the container's entry point and environment (PATH and PYTHONPATH added)."""
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **self.environment}
        entrypoint = self.service.get("entrypoint", [])
        return subprocess.run([*entrypoint, *command], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300, **kwargs)


def in_process_environment(container: Container, monkeypatch) -> None:
    """This process's environment becomes the container's, for the Knowledge Plane variables."""
    for variable in settings_fields():
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(f"{variable}_FILE", raising=False)
    for name, value in container.environment.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("compose_name", ["infra", "app"])
def test_every_FILE_secret_of_both_compose_files_reaches_its_reader(compose_name, tmp_path):
    compose = {"infra": INFRA, "app": merged()}[compose_name]
    services = (INFRA if compose_name == "infra" else APP)["services"]
    fields = settings_fields()
    checked = set()
    for name, service in services.items():
        container = Container(compose, "", name, tmp_path / name) if compose_name == "infra" else \
            Container(compose, "sapkb" if "neo4j" in str(service) else "aurora", name, tmp_path / name)
        file_variables = [v for v in (service.get("environment") or {}) if v.endswith("_FILE")]
        for variable in file_variables:
            secret = container.secret_of(variable)
            expected = container.secret_value(secret)
            base = variable.removesuffix("_FILE")
            if compose_name == "infra" or name in IMAGE_FILE_VARIABLES:
                assert variable in IMAGE_FILE_VARIABLES.get(name, set()), f"{name}: no reader for {variable}"
            elif base in fields:
                settings = Settings.from_environ(container.environment)
                assert field_value(settings, *fields[base]) == expected, variable
            else:
                # Only Dagster's instance file reads a variable of its own: the entry point exports it.
                assert base == "DAGSTER_PG_PASSWORD", f"{name}: nothing reads {variable}"
                result = container.run([sys.executable, "-c", "import os; print(os.environ['DAGSTER_PG_PASSWORD'])"])
                assert result.returncode == 0, result.stderr
                assert result.stdout.strip() == expected
            checked.add((name, variable))
    assert checked, "no *_FILE variable found"


def test_the_vector_stores_accept_the_keys_the_app_reads(tmp_path):
    """Qdrant and Weaviate get, from the same secret files, the build plane's key as a write key and
    the query service's as a read-only key: their compose entry points, run here with a stand-in
    for the server binary, export exactly those."""
    app = merged()["services"]
    assert app["dagster-code"]["environment"]["QDRANT_API_KEY_FILE"] == "/run/secrets/build_vector_key"
    assert app["dagster-code"]["environment"]["WEAVIATE_API_KEY_FILE"] == "/run/secrets/build_vector_key"
    assert app["query"]["environment"]["QDRANT_API_KEY_FILE"] == "/run/secrets/runtime_vector_key"
    assert app["query"]["environment"]["WEAVIATE_API_KEY_FILE"] == "/run/secrets/runtime_vector_key"
    build, read_only = SECRET_VALUES["build_vector_key"], SECRET_VALUES["runtime_vector_key"]
    expected = {
        "qdrant": {"QDRANT__SERVICE__API_KEY": build, "QDRANT__SERVICE__READ_ONLY_API_KEY": read_only},
        "weaviate": {"AUTHENTICATION_APIKEY_ALLOWED_KEYS": f"{build},{read_only}"},
    }
    for name, exported in expected.items():
        Container(INFRA, "", name, tmp_path / name)  # writes its secrets
        shell, flag, script = INFRA["services"][name]["entrypoint"]
        server = re.search(r"exec (\S+)", script).group(1)
        stand_in = tmp_path / name / "server"
        stand_in.write_text("#!/bin/sh\nenv\n")
        stand_in.chmod(0o755)
        script = interpolate(script, {}).replace("/run/secrets/", f"{tmp_path / name}/secrets/")
        result = subprocess.run([shell, flag, script.replace(f"exec {server}", f"exec {stand_in}")],
                                env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        for variable, value in exported.items():
            assert env[variable] == value, (name, variable)
    users = INFRA["services"]["weaviate"]["environment"]["AUTHENTICATION_APIKEY_USERS"].split(",")
    assert users == ["knowledge-build", "knowledge-query"]  # in the order of the keys
    assert INFRA["services"]["weaviate"]["environment"]["AUTHORIZATION_ADMINLIST_READONLY_USERS"] == "knowledge-query"


def test_every_mounted_secret_is_read_and_every_declared_secret_is_mounted():
    for compose in (INFRA, APP):
        mounted = set()
        for name, service in compose["services"].items():
            text = yaml.safe_dump({k: service.get(k) for k in ("environment", "entrypoint", "command")})
            for secret in service.get("secrets", []):
                assert f"/run/secrets/{secret}" in text, f"{name} mounts {secret} but nothing reads it"
                mounted.add(secret)
        assert set(compose.get("secrets", {})) == mounted


@pytest.mark.parametrize("profile", PROFILES)
def test_code_location_and_daemon_load_their_definitions_with_the_compose_environment(profile, tmp_path):
    """``dagster code-server start -m definitions`` (and the daemon, whose runs load the same code):
    the entry point, then the definitions module with its resources, from the service's environment."""
    script = """
import json, os, definitions
repo = definitions.defs.get_repository_def()
resources = definitions.defs.resources  # the configured resources, as the code server serves them
from knowledge_plane.settings import Settings
s = Settings()
print(json.dumps({
    "tenant": resources["knowledge"].tenant_id, "data_dir": resources["knowledge"].data_dir,
    "objects": resources["objects"].kind, "region": resources["objects"].region,
    "registry": s.registry.url.get_secret_value(), "vector": s.vector_store.backend,
    "has_pg_password": bool(os.environ.get("DAGSTER_PG_PASSWORD")),
    "namespaces": len(repo.get_job("build_knowledge").partitions_def.get_partition_keys()),
}))
"""
    values = env_file(profile)
    for name in ("dagster-code", "dagster-daemon"):
        container = Container(merged(), profile, name, tmp_path / name)
        assert container.service["command"][-2:] == ["-m", "definitions"] or "dagster-daemon" in name
        result = container.run([sys.executable, "-c", script])
        assert result.returncode == 0, result.stderr[-3000:]
        loaded = json.loads(result.stdout.strip().splitlines()[-1])
        assert loaded["tenant"] == values["KNOWLEDGE_TENANT_ID"]
        assert loaded["data_dir"] == str(tmp_path / name / "data")
        assert loaded["objects"] == values["KNOWLEDGE_OBJECT_STORE"]
        assert loaded["region"] == ("us-east-1" if values["KNOWLEDGE_OBJECT_STORE"] == "s3" else None)
        assert loaded["registry"] == f"sqlite:///{tmp_path / name}/build_registry_url.db"
        assert loaded["vector"] == values["KNOWLEDGE_VECTOR_BACKEND"]
        assert loaded["has_pg_password"] and loaded["namespaces"] > 0


@pytest.mark.parametrize("profile", PROFILES)
def test_webserver_finds_the_code_location_and_its_instance_has_every_variable(profile, tmp_path):
    """``dagster-webserver -w deploy/workspace.docker.yaml``: the workspace names the code server
    as compose runs it, and every {env: …} of the instance file is set after the entry point."""
    compose = merged()
    container = Container(compose, profile, "dagster-webserver", tmp_path)
    command = container.service["command"]
    workspace = yaml.safe_load((ROOT / command[command.index("-w") + 1]).read_text())
    [location] = workspace["load_from"]
    code = compose["services"]["dagster-code"]["command"]
    assert location["grpc_server"]["host"] == "dagster-code"
    assert str(location["grpc_server"]["port"]) == code[code.index("-p") + 1]
    script = """
import os, sys, yaml
def refs(node):
    if isinstance(node, dict):
        if set(node) == {"env"}:
            yield node["env"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)
instance = yaml.safe_load(open("deploy/dagster.prod.yaml"))
missing = [name for name in refs(instance) if not os.environ.get(name)]
print(" ".join(missing) or "ok")
"""
    result = container.run([sys.executable, "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert container.environment["DAGSTER_HOME"] == str(tmp_path / "dagster-home")  # the image copies the file there


@pytest.mark.parametrize("profile", PROFILES)
def test_query_service_and_console_build_their_apps_from_the_compose_environment(profile, tmp_path, monkeypatch):
    """The query service (uvicorn on ``knowledge_plane.service.main:app``) and ``knowledge console`` build
    their app as their commands do (``create_app()`` from the process's settings), without serving."""
    from knowledge_plane.console.app import create_app as console_app
    from knowledge_plane.service.app import create_app as service_app

    compose = merged()
    query = Container(compose, profile, "query", tmp_path / "query")
    assert query.service["command"][1:3] == ["knowledge_plane.service.main:app", "--host"]
    in_process_environment(query, monkeypatch)
    settings = Settings()
    assert settings.service.api_keys.get_secret_value() == SECRET_VALUES["knowledge_api_keys"]
    assert settings.registry.url.get_secret_value() == f"sqlite:///{tmp_path}/query/runtime_registry_url.db"
    key = settings.vector_store.qdrant_api_key or settings.vector_store.weaviate_api_key
    assert key.get_secret_value() == SECRET_VALUES["runtime_vector_key"]
    if settings.vector_store.backend == "weaviate":
        # The client connects when the backend opens: no server here, so that is as far as it gets.
        from weaviate.exceptions import WeaviateStartUpError

        with pytest.raises(WeaviateStartUpError):
            service_app()
    else:
        app = service_app()
        assert app.state.service.keyring and app.state.service.backend.read_only
        app.state.service.backend.close()

    console = Container(compose, profile, "console", tmp_path / "console")
    assert console.service["command"][1] == "console"
    in_process_environment(console, monkeypatch)
    settings = Settings()
    assert settings.console.secret.get_secret_value() == SECRET_VALUES["console_secret"]
    if settings.facts.store == "neo4j":
        assert settings.facts.neo4j_user == "neo4j"
        assert settings.facts.neo4j_password.get_secret_value() == SECRET_VALUES["neo4j_password"]
        from neo4j.exceptions import ServiceUnavailable

        with pytest.raises(ServiceUnavailable):  # the driver connects to neo4j:7687 at once: no server here
            console_app()
    else:
        app = console_app()
        assert app.state.accounts.get("admin").role == "admin"
