"""The one configuration: every variable reaches its field, secrets come from <VAR>_FILE, errors name
the variable, constructor values win, and no library code reads or writes the environment itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import SecretStr

from knowledge_plane.settings import SECTIONS, ConfigurationError, Settings, env_name, is_secret

ROOT = Path(__file__).resolve().parent.parent


def fields():
    """(section or None, field name, variable, is secret) for every field read from the environment."""
    for name, field in Settings.model_fields.items():
        if env_name(field):
            yield None, name, env_name(field), is_secret(field)
    for section, model in SECTIONS.items():
        for name, field in model.model_fields.items():
            if env_name(field):
                yield section, name, env_name(field), is_secret(field)


FIELDS = list(fields())
SECRETS = [f for f in FIELDS if f[3]]


def value_of(settings: Settings, section: str | None, name: str):
    value = getattr(settings if section is None else getattr(settings, section), name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# A valid value per variable, different from its default, so arriving in the field is visible.
SAMPLES = {
    "KNOWLEDGE_TENANT_ID": "acme", "KNOWLEDGE_DATA_DIR": "/srv/kp", "KNOWLEDGE_CORPUS_DIR": "/srv/corpus",
    "KNOWLEDGE_CACHE_DIR": "/srv/cache", "DAGSTER_HOME": "/srv/dagster",
    "KNOWLEDGE_REGISTRY_URL": "postgresql+psycopg://kp:pw@db/kp", "KNOWLEDGE_MAX_FILE_BYTES": "1234",
    "KNOWLEDGE_MAX_METADATA_BYTES": "2048", "KNOWLEDGE_MAX_TEXT_CHARS": "999", "KNOWLEDGE_KEEP_VERSIONS": "5",
    "KNOWLEDGE_EVAL_MARGIN": "0.1", "KNOWLEDGE_EMBEDDING_BACKEND": "torch", "KNOWLEDGE_PROGRESS_BAR": "1",
    "DOCLING_ARTIFACTS_PATH": "/models/docling", "KNOWLEDGE_EXECUTOR": "ray", "KNOWLEDGE_RAY_ADDRESS": "ray-head:6379",
    "KNOWLEDGE_RAY_WORKERS": "16", "KNOWLEDGE_RELEVANCE_NAMESPACES": "knowledge:faq,internal:*",
    "KNOWLEDGE_OBJECT_STORE": "s3", "KNOWLEDGE_BUCKET": "uploads",
    "S3_ENDPOINT_URL": "http://minio:9000", "AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "knowledge-build",
    "AWS_SECRET_ACCESS_KEY": "s3-secret", "KNOWLEDGE_VECTOR_BACKEND": "qdrant", "QDRANT_URL": "http://qdrant:6333",
    "QDRANT_PATH": "/srv/qdrant", "QDRANT_API_KEY": "qdrant-key", "WEAVIATE_URL": "http://weaviate:8080",
    "WEAVIATE_API_KEY": "weaviate-key", "KNOWLEDGE_VECTOR_COLLECTIONS": "knowledge:*=shards:2,replicas:2",
    "KNOWLEDGE_VECTOR_UPLOAD_WORKERS": "4", "KNOWLEDGE_FACT_STORE": "neo4j", "NEO4J_URI": "bolt://neo4j:7687",
    "NEO4J_USER": "neo4j", "NEO4J_PASSWORD": "neo4j-pw", "NEO4J_DATABASE": "facts", "KNOWLEDGE_REVIEWER": "marie",
    "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://llm:8000/v1", "KNOWLEDGE_LLM_MODEL": "qwen2.5-7b",
    "KNOWLEDGE_LLM_TOKEN_BUDGET": "5000", "KNOWLEDGE_LLM_PRICE_INPUT": "1.5", "KNOWLEDGE_LLM_PRICE_OUTPUT": "2.5",
    "KNOWLEDGE_RETRY_ATTEMPTS": "2", "KNOWLEDGE_RETRY_DEADLINE_S": "12.5", "KNOWLEDGE_QUERY_RETRY_ATTEMPTS": "1",
    "KNOWLEDGE_QUERY_RETRY_DEADLINE_S": "0.5",
    "KNOWLEDGE_API_KEYS": "chatbot=sha256:" + "ab" * 32, "ENFORCE_CALLER_APP_REGISTRY": "true",
    "KNOWLEDGE_RATE_LIMIT_PER_MINUTE": "30", "KNOWLEDGE_TRUSTED_PROXIES": "10.0.0.0/8",
    "KNOWLEDGE_RATE_LIMIT_PER_ACTOR_PER_MINUTE": "900", "KNOWLEDGE_RATE_LIMIT_BLOCK_AFTER": "5",
    "KNOWLEDGE_RATE_LIMIT_BLOCK_SECONDS": "120", "KNOWLEDGE_RATE_LIMIT_STORAGE": "redis://:pw@redis:6379/1",
    "KNOWLEDGE_JWT_JWKS_URL": "https://login.aurora/jwks", "KNOWLEDGE_JWT_ISSUER": "https://login.aurora",
    "KNOWLEDGE_JWT_AUDIENCE": "knowledge", "KNOWLEDGE_JWT_ACTOR_CLAIM": "client_id",
    "KNOWLEDGE_JWT_ACTORS": "aurora-ui=aurora_nexus_ui",
    "KNOWLEDGE_THREADS_PER_REQUEST": "2", "KNOWLEDGE_MAX_BODY_BYTES": "4096", "KNOWLEDGE_ALIAS_POLL_SECONDS": "2",
    "KNOWLEDGE_DENSE_WEIGHT": "0.5", "KNOWLEDGE_BM25_WEIGHT": "2", "KNOWLEDGE_DENSE_SHARE": "0.6",
    "KNOWLEDGE_SCORE_THRESHOLDS": "default=0.4", "KNOWLEDGE_RELEVANCE_THRESHOLD": "0.86",
    "KNOWLEDGE_CONSOLE_SECRET": "c" * 40,
    "KNOWLEDGE_METRICS_PORT": "9464", "KNOWLEDGE_QUERY_LOG_RETENTION_DAYS": "30",
    "KNOWLEDGE_QUERY_LOG_END_USER_KEY": "end-user-hmac-key",
    "KNOWLEDGE_CONSOLE_ACCOUNTS": "/run/secrets/console_accounts",
    "KNOWLEDGE_CONSOLE_OIDC_JWKS_URL": "https://idp/jwks", "KNOWLEDGE_CONSOLE_OIDC_ISSUER": "https://idp",
    "KNOWLEDGE_CONSOLE_OIDC_AUDIENCE": "console", "KNOWLEDGE_CONSOLE_OIDC_ROLES_CLAIM": "groups",
    "KNOWLEDGE_CONSOLE_OIDC_NAME_CLAIM": "email", "KNOWLEDGE_CONSOLE_SECURE_COOKIES": "1",
    "KNOWLEDGE_CONSOLE_MAX_BODY_BYTES": "8192",
    "KNOWLEDGE_CONSOLE_SIGNIN_FAILURES_PER_ACCOUNT": "3", "KNOWLEDGE_CONSOLE_SIGNIN_FAILURES_PER_ADDRESS": "30",
    "KNOWLEDGE_CONSOLE_SIGNIN_WINDOW_SECONDS": "600", "KNOWLEDGE_CONSOLE_OIDC_CLIENT_ID": "governance-console",
    "KNOWLEDGE_CONSOLE_OIDC_CLIENT_SECRET": "oidc-client-secret",
    "KNOWLEDGE_CONSOLE_OIDC_REDIRECT_URL": "https://console.example/login/oidc/callback",
}


def test_every_field_has_a_sample_and_no_variable_is_read_twice():
    names = [f[2] for f in FIELDS]
    assert len(names) == len(set(names))
    assert set(names) == set(SAMPLES)


def test_every_variable_arrives_in_its_field():
    settings = Settings.from_environ(SAMPLES)
    for section, name, variable, _ in FIELDS:
        value = value_of(settings, section, name)
        sample = SAMPLES[variable]
        if isinstance(value, Path):
            assert value == Path(sample), variable
        elif isinstance(value, bool):
            assert value is True, variable
        elif isinstance(value, int | float):
            assert value == float(sample), variable
        else:
            assert value == sample, variable


@pytest.mark.parametrize(("section", "name", "variable"), [f[:3] for f in SECRETS], ids=[f[2] for f in SECRETS])
def test_every_secret_is_read_from_its_FILE_variable_and_hidden_from_repr(tmp_path, section, name, variable):
    secret = tmp_path / "secret"
    secret.write_text(SAMPLES[variable] + "\n")  # secret files usually end with a newline
    settings = Settings.from_environ({f"{variable}_FILE": str(secret)})
    assert value_of(settings, section, name) == SAMPLES[variable]
    assert SAMPLES[variable] not in repr(settings)
    # The variable itself wins over the file.
    both = Settings.from_environ({variable: SAMPLES[variable], f"{variable}_FILE": str(tmp_path / "absent")})
    assert value_of(both, section, name) == SAMPLES[variable]


def test_a_missing_secret_file_is_an_error_naming_the_variable(tmp_path):
    with pytest.raises(ValueError, match=f"NEO4J_PASSWORD_FILE names a file that cannot be read: {tmp_path}/nope"):
        Settings.from_environ({"NEO4J_PASSWORD_FILE": str(tmp_path / "nope")})


def test_FILE_is_only_for_secrets(tmp_path):
    path = tmp_path / "dir"
    path.write_text("/elsewhere")
    assert Settings.from_environ({"KNOWLEDGE_DATA_DIR_FILE": str(path)}).paths.data_dir != Path("/elsewhere")


def test_blank_variables_count_as_unset():
    # compose writes ${S3_ENDPOINT_URL:-} as an empty string
    settings = Settings.from_environ({"S3_ENDPOINT_URL": "", "KNOWLEDGE_TENANT_ID": "  ", "QDRANT_API_KEY": ""})
    assert settings.object_store.endpoint_url is None and settings.tenant_id == "default"
    assert settings.vector_store.qdrant_api_key is None


@pytest.mark.parametrize(("environ", "message"), [
    ({"KNOWLEDGE_KEEP_VERSIONS": "1"}, r"^KNOWLEDGE_KEEP_VERSIONS must be at least 2 \(@latest and @rollback\)$"),
    ({"KNOWLEDGE_OBJECT_STORE": "ftp"}, r"^KNOWLEDGE_OBJECT_STORE must be 'local' or 's3', got 'ftp'$"),
    ({"KNOWLEDGE_FACT_STORE": "mongo"}, r"^KNOWLEDGE_FACT_STORE must be 'sql' or 'neo4j'"),
    ({"KNOWLEDGE_EVAL_MARGIN": "2"}, r"^KNOWLEDGE_EVAL_MARGIN must be between 0 and 1$"),
    ({"KNOWLEDGE_MAX_FILE_BYTES": "0"}, r"^KNOWLEDGE_MAX_FILE_BYTES must be a positive number of bytes$"),
    ({"KNOWLEDGE_MAX_FILE_BYTES": "ten"}, r"^KNOWLEDGE_MAX_FILE_BYTES: Input should be a valid integer.*'ten'"),
    ({"KNOWLEDGE_TENANT_ID": "Acme Corp"}, r"^KNOWLEDGE_TENANT_ID: invalid tenant id"),
    ({"KNOWLEDGE_RATE_LIMIT_PER_MINUTE": "0"}, r"^KNOWLEDGE_RATE_LIMIT_PER_MINUTE: .*greater than or equal to 1"),
    ({"KNOWLEDGE_TRUSTED_PROXIES": "proxy.local"}, r"KNOWLEDGE_TRUSTED_PROXIES: 'proxy.local' is not an IP"),
    ({"KNOWLEDGE_LLM_PRICE_INPUT": "cheap"}, r"^KNOWLEDGE_LLM_PRICE_INPUT: Input should be a valid number"),
    ({"KNOWLEDGE_VECTOR_COLLECTIONS": "knowledge:*=shards:two"},
     r"^KNOWLEDGE_VECTOR_COLLECTIONS: invalid collection settings 'knowledge:\*=shards:two': shards must be a whole "
     r"number ≥ 1, got 'two' \(got 'knowledge:\*=shards:two'\)$"),
    ({"KNOWLEDGE_VECTOR_UPLOAD_WORKERS": "0"}, r"^KNOWLEDGE_VECTOR_UPLOAD_WORKERS: .*greater than or equal to 1"),
])
def test_errors_name_the_variable(environ, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_environ(environ)


def test_two_errors_are_reported_together():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ({"KNOWLEDGE_KEEP_VERSIONS": "1", "KNOWLEDGE_BUCKET": "b", "KNOWLEDGE_DENSE_SHARE": "3"})
    assert "KNOWLEDGE_KEEP_VERSIONS" in str(raised.value) and "KNOWLEDGE_DENSE_SHARE" in str(raised.value)


def test_paths_and_registry_follow_the_data_dir_unless_set(tmp_path):
    settings = Settings.from_environ({"KNOWLEDGE_DATA_DIR": str(tmp_path)})
    assert settings.paths.cache_dir == tmp_path / "cache" and settings.paths.dagster_home == tmp_path / "dagster"
    assert settings.registry.url.get_secret_value() == f"sqlite:///{tmp_path}/registry.db"
    assert (settings.paths.objects_dir, settings.paths.stages_dir) == (tmp_path / "objects", tmp_path / "stages")
    shared = Settings.from_environ({"KNOWLEDGE_DATA_DIR": str(tmp_path), "KNOWLEDGE_CACHE_DIR": "/srv/cache"})
    assert shared.paths.cache_dir == Path("/srv/cache")


def test_constructor_values_win_field_by_field_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("KNOWLEDGE_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setenv("KNOWLEDGE_KEEP_VERSIONS", "4")
    settings = Settings(paths={"data_dir": tmp_path / "given"}, tenant_id="acme")
    assert settings.paths.data_dir == tmp_path / "given"
    assert settings.paths.corpus_dir == tmp_path / "corpus"  # not given: from the environment
    assert settings.build.keep_versions == 4 and settings.tenant_id == "acme"
    # The registry follows the data dir actually used, not the environment's.
    assert settings.registry.url.get_secret_value() == f"sqlite:///{tmp_path}/given/registry.db"


def test_updated_validates_again():
    settings = Settings.from_environ({})
    assert settings.updated(build={"max_file_bytes": 10}).build.max_file_bytes == 10
    assert settings.updated(build={"max_file_bytes": 10}).build.keep_versions == settings.build.keep_versions
    with pytest.raises(ValueError, match="KNOWLEDGE_KEEP_VERSIONS must be at least 2"):
        settings.updated(build={"keep_versions": 1})


def test_a_new_data_dir_takes_along_what_followed_the_old_one(tmp_path):
    settings = Settings.from_environ({"KNOWLEDGE_DATA_DIR": str(tmp_path / "a")})
    moved = settings.updated(paths={"data_dir": tmp_path / "b"})
    assert moved.paths.cache_dir == tmp_path / "b" / "cache" and moved.paths.dagster_home == tmp_path / "b" / "dagster"
    assert moved.registry.url.get_secret_value() == f"sqlite:///{tmp_path}/b/registry.db"
    # What was set on its own stays where it was.
    pinned = Settings.from_environ({"KNOWLEDGE_DATA_DIR": str(tmp_path / "a"),
                                    "KNOWLEDGE_CACHE_DIR": str(tmp_path / "shared-cache"),
                                    "KNOWLEDGE_REGISTRY_URL": "postgresql+psycopg://kp@db/kp"})
    moved = pinned.updated(paths={"data_dir": tmp_path / "b"})
    assert moved.paths.cache_dir == tmp_path / "shared-cache" and moved.paths.dagster_home == tmp_path / "b" / "dagster"
    assert moved.registry.url.get_secret_value() == "postgresql+psycopg://kp@db/kp"


def test_settings_are_frozen():
    settings = Settings.from_environ({})
    with pytest.raises(ValueError):
        settings.tenant_id = "other"  # type: ignore[misc]


def _python_files():
    for folder in ("knowledge_plane", "assets", "resources", "sensors", "jobs"):
        yield from (ROOT / folder).rglob("*.py")
    yield ROOT / "definitions.py"


def _environment_uses(path: Path) -> list[str]:
    """Every read or write of os.environ / os.getenv / os.putenv in a module, as 'line: code'."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "putenv", "unsetenv"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_the_settings_module_reads_the_environment():
    uses = [use for path in _python_files() for use in _environment_uses(path)]
    allowed = {
        "knowledge_plane/settings.py",  # EnvironmentSource, the one reader
        "knowledge_plane/cli/build.py",  # `knowledge ui` hands its environment, plus DAGSTER_HOME, to `dagster dev`
    }
    assert [u for u in uses if u.rsplit(":", 1)[0] not in allowed] == []


def test_no_code_writes_the_environment():
    writes = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            target = None
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                target = next((t for t in targets if isinstance(t, ast.Subscript)
                               and ast.unparse(t.value) == "os.environ"), None)
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in (
                    "os.environ.setdefault", "os.environ.update", "os.environ.pop", "os.putenv", "os.unsetenv"):
                target = node
            if target is not None:
                writes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert writes == []


def test_docs_name_every_variable_and_every_secret_FILE():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert [v for _, _, v, _ in FIELDS if f"`{v}`" not in text] == []
    assert [v for _, _, v, _ in SECRETS if f"`{v}_FILE`" not in text] == []


def test_the_retry_settings_reach_the_remote_stores(tmp_path):
    """KNOWLEDGE_RETRY_* set the policy the S3 store and the vector backends retry with; the query
    service (read-only) gets the query policy."""
    from knowledge_plane.storage.object_store import open_object_store
    from knowledge_plane.storage.vector_backends import open_vector_backend

    environ = {"KNOWLEDGE_DATA_DIR": str(tmp_path), "KNOWLEDGE_OBJECT_STORE": "s3", "S3_ENDPOINT_URL": "http://127.0.0.1:9",
               "KNOWLEDGE_VECTOR_BACKEND": "qdrant", "QDRANT_PATH": str(tmp_path / "qdrant"),
               "KNOWLEDGE_RETRY_ATTEMPTS": "2", "KNOWLEDGE_RETRY_DEADLINE_S": "7",
               "KNOWLEDGE_QUERY_RETRY_ATTEMPTS": "1", "KNOWLEDGE_QUERY_RETRY_DEADLINE_S": "0.5"}
    settings = Settings.from_environ(environ)
    store = open_object_store(settings)
    assert (store.retry.attempts, store.retry.deadline_s) == (2, 7.0)
    with open_vector_backend(settings, read_only=False) as writer:
        assert (writer.retry.attempts, writer.retry.deadline_s) == (2, 7.0)
    with open_vector_backend(settings, read_only=True) as reader:
        assert (reader.retry.attempts, reader.retry.deadline_s) == (1, 0.5)
    with pytest.raises(ConfigurationError, match="KNOWLEDGE_RETRY_ATTEMPTS"):
        Settings.from_environ({"KNOWLEDGE_RETRY_ATTEMPTS": "0"})


@pytest.mark.parametrize("environ, variable", [({"KNOWLEDGE_EXECUTOR": "spark"}, "KNOWLEDGE_EXECUTOR"),
                                               ({"KNOWLEDGE_RAY_WORKERS": "0"}, "KNOWLEDGE_RAY_WORKERS")])
def test_an_unknown_executor_or_an_empty_ray_pool_is_refused(environ, variable):
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_environ(environ)


def test_the_relevance_namespaces_name_namespaces_or_patterns():
    build = Settings.from_environ({"KNOWLEDGE_RELEVANCE_NAMESPACES": "knowledge:faq, internal:*"}).build
    assert build.wants_relevance("knowledge:faq") and build.wants_relevance("internal:code")
    assert not build.wants_relevance("knowledge:guides")
    assert Settings.from_environ({}).build.wants_relevance("knowledge:guides")  # default: knowledge:*
    # An empty variable counts as unset (the default); "none" turns the relevance vectors off.
    assert not Settings.from_environ({"KNOWLEDGE_RELEVANCE_NAMESPACES": "none"}).build.wants_relevance("knowledge:faq")
