"""The one configuration of every plane: a pydantic-settings ``Settings`` with a section per concern.

Every field is read from one environment variable, named explicitly by its ``validation_alias``
(the names of docs/configuration.md; deploy/*.env and the compose files set them). A field typed
``SecretStr`` is a secret: when its variable is unset, ``<VARIABLE>_FILE`` may name a file that
holds it (Docker/Kubernetes secrets). One settings source, ``EnvironmentSource``, does both, so no
module reads the environment itself: a process builds ``Settings()`` once (the Dagster code
location, the query service and the console at start-up, the CLI in ``main``) and passes it down.

Values given to the constructor (``Settings(paths={"data_dir": ...})``) win over the environment,
section by section, field by field.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from knowledge_plane.domain.ids import namespace_entry, validate_tenant_id
from knowledge_plane.storage import retries
from knowledge_plane.storage.collection_sizing import parse_collection_sizing

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env_name(field: FieldInfo) -> str | None:
    """The environment variable a field is read from: its validation alias (None: not configurable)."""
    return field.validation_alias if isinstance(field.validation_alias, str) else None


# An optional secret (None: not configured). A short name: the build's secret scan indexes this
# code, and reads a long type name after a key-like field name as the key's value.
Hidden = SecretStr | None


def is_secret(field: FieldInfo) -> bool:
    """A ``SecretStr`` (or optional ``SecretStr``) field: hidden from reprs, readable from ``<VAR>_FILE``."""
    return field.annotation is SecretStr or SecretStr in getattr(field.annotation, "__args__", ())


class Section(BaseModel):
    """A group of settings; fields are filled by name (the environment source maps the variables)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class PathSettings(Section):
    data_dir: Path = Field(PROJECT_ROOT / ".knowledge-data", validation_alias="KNOWLEDGE_DATA_DIR",
                           description="root of everything the embedded defaults write")
    corpus_dir: Path = Field(PROJECT_ROOT / "knowledge", validation_alias="KNOWLEDGE_CORPUS_DIR",
                             description="the Git-tracked corpus; each folder is a namespace")
    cache_dir: Path = Field(None, validation_alias="KNOWLEDGE_CACHE_DIR",  # type: ignore[arg-type]
                            description="content-keyed caches (parse, chunks, embeddings, ONNX export); "
                                        "shareable between data dirs. Default: <data dir>/cache")
    dagster_home: Path = Field(None, validation_alias="DAGSTER_HOME",  # type: ignore[arg-type]
                               description="the Dagster instance the CLI uses. Default: <data dir>/dagster")
    project_root: Path = Field(PROJECT_ROOT, description="where .ragignore is read (not from the environment)")

    @model_validator(mode="before")
    @classmethod
    def _defaults_under_data_dir(cls, data: Any) -> Any:
        # The caches and the Dagster home follow the data dir unless set: computed from the data
        # dir as given (constructor or environment), before validation.
        if isinstance(data, dict):
            data = dict(data)
            data_dir = Path(data.get("data_dir") or cls.model_fields["data_dir"].default)
            if not data.get("cache_dir"):
                data["cache_dir"] = data_dir / "cache"
            if not data.get("dagster_home"):
                data["dagster_home"] = data_dir / "dagster"
        return data

    @field_validator("data_dir", "corpus_dir", "cache_dir", "dagster_home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def stages_dir(self) -> Path:
        return self.data_dir / "stages"

    @property
    def indexes_dir(self) -> Path:
        return self.data_dir / "indexes"


class RegistrySettings(Section):
    url: SecretStr = Field(SecretStr(""), validation_alias="KNOWLEDGE_REGISTRY_URL",
                           description="SQLAlchemy URL of the registry (may hold a password). "
                                       "Default: sqlite:///<data dir>/registry.db")
    query_log_retention_days: int = Field(
        90, ge=1, validation_alias="KNOWLEDGE_QUERY_LOG_RETENTION_DAYS",
        description="query-log rows older than this are deleted by the query_log_retention schedule")
    query_log_end_user_key: Hidden = Field(
        None, validation_alias="KNOWLEDGE_QUERY_LOG_END_USER_KEY",
        description="HMAC key under which the query log records each query's end user (JWT subject, "
                    "X-End-User-ID or client address) for `querylog erase --end-user`; unset: no end user is "
                    "recorded")


EXECUTORS = ("local", "ray")


class BuildSettings(Section):
    max_file_bytes: int = Field(10 * 1024 * 1024, validation_alias="KNOWLEDGE_MAX_FILE_BYTES",
                                description="larger source files and uploads are quarantined")
    max_metadata_bytes: int = Field(64 * 1024, validation_alias="KNOWLEDGE_MAX_METADATA_BYTES",
                                    description="an upload's object metadata or sidecar, a corpus sidecar")
    max_text_chars: int = Field(5_000_000, validation_alias="KNOWLEDGE_MAX_TEXT_CHARS",
                                description="text extracted from one document (a small DOCX can expand a lot)")
    keep_versions: int = Field(3, validation_alias="KNOWLEDGE_KEEP_VERSIONS",
                               description="index versions kept per namespace (@latest and @rollback at least)")
    eval_margin: float = Field(0.05, validation_alias="KNOWLEDGE_EVAL_MARGIN",
                               description="how far an evaluation figure may fall below @latest's")
    embedding_backend: str = Field("auto", validation_alias="KNOWLEDGE_EMBEDDING_BACKEND",
                                   description="onnx, openvino, torch or auto (onnx when onnxruntime is installed)")
    progress_bar: bool | None = Field(None, validation_alias="KNOWLEDGE_PROGRESS_BAR",
                                      description="draw a progress bar while embedding; unset: `knowledge build` "
                                                  "draws one on a terminal, other processes do not")
    docling_artifacts_path: str | None = Field(None, validation_alias="DOCLING_ARTIFACTS_PATH",
                                               description="pre-downloaded Docling models (offline parsing)")
    executor: str = Field("local", validation_alias="KNOWLEDGE_EXECUTOR",
                          description="where chunk texts are embedded: local (the build process) or ray (an "
                                      "actor pool on a Ray cluster; the ray extra, see docs/scaling.md)")
    ray_address: str | None = Field(None, validation_alias="KNOWLEDGE_RAY_ADDRESS",
                                    description="the Ray cluster KNOWLEDGE_EXECUTOR=ray joins (host:port of its "
                                                "head, or auto); unset: a Ray instance local to the build process")
    ray_workers: int = Field(2, validation_alias="KNOWLEDGE_RAY_WORKERS",
                             description="embedding actors on the Ray cluster (one model and one CPU each)")
    relevance_namespaces: str = Field(
        "knowledge:*", validation_alias="KNOWLEDGE_RELEVANCE_NAMESPACES",
        description="comma-separated namespaces or patterns whose versions carry the relevance model's passage "
                    "vectors, which the query service's gate then uses (docs/quality.md); none: no namespace")

    def wants_relevance(self, namespace: str) -> bool:
        """Whether ``namespace``'s versions carry relevance vectors (KNOWLEDGE_RELEVANCE_NAMESPACES)."""
        patterns = [p.strip() for p in self.relevance_namespaces.split(",") if p.strip()]
        return patterns != ["none"] and namespace_entry(patterns, namespace) is not None

    @model_validator(mode="after")
    def _check(self) -> BuildSettings:
        if self.keep_versions < 2:
            raise ValueError("KNOWLEDGE_KEEP_VERSIONS must be at least 2 (@latest and @rollback)")
        if not 0.0 <= self.eval_margin <= 1.0:
            raise ValueError("KNOWLEDGE_EVAL_MARGIN must be between 0 and 1")
        if self.max_file_bytes <= 0:
            raise ValueError("KNOWLEDGE_MAX_FILE_BYTES must be a positive number of bytes")
        if self.max_metadata_bytes <= 0:
            raise ValueError("KNOWLEDGE_MAX_METADATA_BYTES must be a positive number of bytes")
        if self.max_text_chars <= 0:
            raise ValueError("KNOWLEDGE_MAX_TEXT_CHARS must be a positive number of characters")
        if self.executor not in EXECUTORS:
            raise ValueError(f"KNOWLEDGE_EXECUTOR must be one of {', '.join(EXECUTORS)}")
        if self.ray_workers < 1:
            raise ValueError("KNOWLEDGE_RAY_WORKERS must be at least 1")
        return self


class ObjectStoreSettings(Section):
    kind: str = Field("local", validation_alias="KNOWLEDGE_OBJECT_STORE",
                      description="local (a directory under the data dir) or s3 (MinIO / S3)")
    bucket: str = Field("knowledge", validation_alias="KNOWLEDGE_BUCKET",
                        description="bucket holding uploads/{tenant_id}/{pack_id}/…")
    endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL", description="MinIO/S3 endpoint")
    region: str | None = Field(None, validation_alias="AWS_REGION", description="S3 region")
    access_key_id: str | None = Field(None, validation_alias="AWS_ACCESS_KEY_ID", description="S3 access key id")
    secret_access_key: Hidden = Field(None, validation_alias="AWS_SECRET_ACCESS_KEY",
                                                description="S3 secret key")

    @model_validator(mode="after")
    def _check(self) -> ObjectStoreSettings:
        if self.kind not in ("local", "s3"):
            raise ValueError(f"KNOWLEDGE_OBJECT_STORE must be 'local' or 's3', got {self.kind!r}")
        return self


class VectorStoreSettings(Section):
    backend: str = Field("local", validation_alias="KNOWLEDGE_VECTOR_BACKEND",
                         description="local (the registry's index files), qdrant or weaviate")
    qdrant_url: str | None = Field(None, validation_alias="QDRANT_URL", description="a Qdrant server")
    qdrant_path: str | None = Field(None, validation_alias="QDRANT_PATH",
                                    description="qdrant-client local mode (tests, single machine)")
    qdrant_api_key: Hidden = Field(None, validation_alias="QDRANT_API_KEY", description="Qdrant API key")
    weaviate_url: str | None = Field(None, validation_alias="WEAVIATE_URL", description="a Weaviate server")
    weaviate_api_key: Hidden = Field(None, validation_alias="WEAVIATE_API_KEY",
                                               description="Weaviate API key")
    collections: str = Field(
        "", validation_alias="KNOWLEDGE_VECTOR_COLLECTIONS",
        description="per-namespace shards, replicas and write consistency of new Qdrant/Weaviate collections, e.g. "
                    "'knowledge:*=shards:2,replicas:2,write_consistency:quorum' (entries separated by ';'); "
                    "unset: the store's defaults")
    upload_workers: int = Field(1, ge=1, le=32, validation_alias="KNOWLEDGE_VECTOR_UPLOAD_WORKERS",
                                description="Qdrant batches of 256 points upserted at once when publishing a version")

    @field_validator("backend")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("collections")
    @classmethod
    def _collections_parse(cls, value: str) -> str:
        parse_collection_sizing(value)  # a typo fails at load, not as a silently unsharded collection
        return value


class FactsSettings(Section):
    store: str = Field("sql", validation_alias="KNOWLEDGE_FACT_STORE",
                       description="sql (the registry database) or neo4j")
    neo4j_uri: str | None = Field(None, validation_alias="NEO4J_URI", description="e.g. bolt://neo4j:7687")
    neo4j_user: str | None = Field(None, validation_alias="NEO4J_USER", description="no user: no authentication")
    neo4j_password: Hidden = Field(None, validation_alias="NEO4J_PASSWORD", description="Neo4j password")
    neo4j_database: str | None = Field(None, validation_alias="NEO4J_DATABASE", description="default: the server's")
    reviewer: str | None = Field(None, validation_alias="KNOWLEDGE_REVIEWER",
                                 description="who `knowledge facts` records as the reviewer when --by is not given "
                                             "(default: the login name)")

    @model_validator(mode="after")
    def _check(self) -> FactsSettings:
        if self.store not in ("sql", "neo4j"):
            raise ValueError(f"KNOWLEDGE_FACT_STORE must be 'sql' or 'neo4j', got {self.store!r}")
        return self  # NEO4J_URI is checked when a store is opened: the query service opens none

    @field_validator("store")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class RetrySettings(Section):
    attempts: int = Field(retries.DEFAULT_ATTEMPTS, validation_alias="KNOWLEDGE_RETRY_ATTEMPTS",
                          description="attempts of a call to a remote store (Qdrant, Weaviate, S3, Neo4j) by the "
                                      "build plane, CLI and console before it fails; 1: no retry")
    deadline_s: float = Field(retries.DEFAULT_DEADLINE_S, validation_alias="KNOWLEDGE_RETRY_DEADLINE_S",
                              description="seconds after which such a call stops retrying")
    query_attempts: int = Field(retries.QUERY_ATTEMPTS, validation_alias="KNOWLEDGE_QUERY_RETRY_ATTEMPTS",
                                description="attempts of the query service's vector search (a person is waiting)")
    query_deadline_s: float = Field(retries.QUERY_DEADLINE_S, validation_alias="KNOWLEDGE_QUERY_RETRY_DEADLINE_S",
                                    description="seconds after which the query service's search stops retrying")

    @model_validator(mode="after")
    def _check(self) -> RetrySettings:
        if self.attempts < 1 or self.query_attempts < 1:
            raise ValueError("KNOWLEDGE_RETRY_ATTEMPTS and KNOWLEDGE_QUERY_RETRY_ATTEMPTS must be at least 1")
        if self.deadline_s <= 0 or self.query_deadline_s <= 0:
            raise ValueError("KNOWLEDGE_RETRY_DEADLINE_S and KNOWLEDGE_QUERY_RETRY_DEADLINE_S must be positive")
        return self

    def policy(self, query: bool = False) -> retries.RetryPolicy:
        """The build plane's policy, or (``query``) the query service's shorter one."""
        if query:
            return retries.RetryPolicy(attempts=self.query_attempts, deadline_s=self.query_deadline_s,
                                       max_wait_s=retries.QUERY_MAX_WAIT_S)
        return retries.RetryPolicy(attempts=self.attempts, deadline_s=self.deadline_s)


class LLMSettings(Section):
    api_key: Hidden = Field(None, validation_alias="OPENAI_API_KEY",
                                      description="key of the OpenAI-compatible endpoint")
    base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL",
                                 description="an OpenAI-compatible endpoint (none: api.openai.com)")
    model: str = Field("gpt-4o-mini", validation_alias="KNOWLEDGE_LLM_MODEL", description="the extraction model")
    token_budget: int = Field(200_000, validation_alias="KNOWLEDGE_LLM_TOKEN_BUDGET",
                              description="tokens one run may spend")
    price_input_per_mtok: float = Field(0.15, validation_alias="KNOWLEDGE_LLM_PRICE_INPUT",
                                        description="price per million input tokens (reported cost)")
    price_output_per_mtok: float = Field(0.60, validation_alias="KNOWLEDGE_LLM_PRICE_OUTPUT",
                                         description="price per million output tokens (reported cost)")


class ServiceSettings(Section):
    """What the query service alone reads (the build plane never needs API keys)."""

    api_keys: SecretStr = Field(
        SecretStr(""), validation_alias="KNOWLEDGE_API_KEYS",
        description="comma-separated actor=key or actor=sha256:<hex>; empty: every query is 401")
    enforce_caller_app_registry: bool = Field(
        False, validation_alias="ENFORCE_CALLER_APP_REGISTRY",
        description="reject a caller_app that is not registered and active with 400")
    rate_limit_per_minute: int = Field(
        10, ge=1, validation_alias="KNOWLEDGE_RATE_LIMIT_PER_MINUTE",
        description="requests per minute per end user of an actor (X-End-User-ID, else the client address), "
                    "and failed authentications per client address")
    rate_limit_per_actor_per_minute: int = Field(
        600, ge=1, validation_alias="KNOWLEDGE_RATE_LIMIT_PER_ACTOR_PER_MINUTE",
        description="requests per minute per actor, all its end users together")
    rate_limit_block_after: int = Field(
        3, ge=1, validation_alias="KNOWLEDGE_RATE_LIMIT_BLOCK_AFTER",
        description="an end user refused this many times within a minute is blocked")
    rate_limit_block_seconds: int = Field(
        300, ge=1, validation_alias="KNOWLEDGE_RATE_LIMIT_BLOCK_SECONDS",
        description="how long a blocked end user is refused (Retry-After says what is left)")
    rate_limit_storage: SecretStr = Field(
        SecretStr("memory://"), validation_alias="KNOWLEDGE_RATE_LIMIT_STORAGE",
        description="where the limits count: memory:// (one process) or redis://host:port/db (several "
                    "workers or replicas share the budgets)")
    trusted_proxies: str = Field(
        "", validation_alias="KNOWLEDGE_TRUSTED_PROXIES",
        description="comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For is "
                    "believed; empty: the header is ignored and the peer address is the client")
    jwt_jwks_url: str = Field(
        "", validation_alias="KNOWLEDGE_JWT_JWKS_URL",
        description="JWKS URL of the callers' login service; empty: a bearer token can only be an API key")
    jwt_issuer: str = Field("", validation_alias="KNOWLEDGE_JWT_ISSUER",
                            description="the iss a bearer JWT must carry (required with KNOWLEDGE_JWT_JWKS_URL)")
    jwt_audience: str = Field("", validation_alias="KNOWLEDGE_JWT_AUDIENCE",
                              description="the aud a bearer JWT must carry (required with KNOWLEDGE_JWT_JWKS_URL)")
    jwt_actor_claim: str = Field(
        "azp", min_length=1, validation_alias="KNOWLEDGE_JWT_ACTOR_CLAIM",
        description="the claim naming the calling application (mapped by KNOWLEDGE_JWT_ACTORS)")
    jwt_actors: str = Field(
        "", validation_alias="KNOWLEDGE_JWT_ACTORS",
        description="comma-separated claim-value=actor: which actor fixed in code a token's application is; "
                    "a token whose claim is not listed is 401")
    threads_per_request: int = Field(
        1, ge=1, validation_alias="KNOWLEDGE_THREADS_PER_REQUEST",
        description="torch and BLAS threads a request uses; requests run in parallel, one core each")
    max_body_bytes: int = Field(16 * 1024, ge=1024, validation_alias="KNOWLEDGE_MAX_BODY_BYTES",
                                description="larger request bodies are refused with 413")
    alias_poll_seconds: float = Field(
        1.0, gt=0, le=5, validation_alias="KNOWLEDGE_ALIAS_POLL_SECONDS",
        description="how often the aliases are read; a moved alias is served within this plus the load time")
    dense_weight: float = Field(1.0, ge=0, validation_alias="KNOWLEDGE_DENSE_WEIGHT",
                                description="weight of the cosine in the fused score that orders passages")
    bm25_weight: float = Field(1.0, ge=0, validation_alias="KNOWLEDGE_BM25_WEIGHT",
                               description="weight of the BM25 score (divided by the best) in the fused score")
    dense_share: float = Field(0.7, ge=0, le=1, validation_alias="KNOWLEDGE_DENSE_SHARE",
                               description="score = share × cosine + (1 − share) × lexical coverage")
    relevance_threshold: float = Field(
        0.845, ge=-1, le=1, validation_alias="KNOWLEDGE_RELEVANCE_THRESHOLD",
        description="the relevance model's cosine a passage must reach, in versions with relevance vectors")
    score_thresholds: str = Field(
        "", validation_alias="KNOWLEDGE_SCORE_THRESHOLDS",
        description="overrides of the per-namespace thresholds, e.g. 'default=0.36,internal:*=0.37'")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, validation_alias="KNOWLEDGE_METRICS_PORT",
        description="port of the Prometheus metrics (/metrics), apart from the API; unset: not served")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        cls.parse_networks(value)  # a typo fails at start-up, not as a silently untrusted proxy
        return value

    @staticmethod
    def parse_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks = []
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"KNOWLEDGE_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
        return tuple(networks)

    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return self.parse_networks(self.trusted_proxies)


class ConsoleSection(Section):
    """What the governance console reads; whether someone can sign in is checked by ``console.config``."""

    secret: Hidden = Field(
        None, validation_alias="KNOWLEDGE_CONSOLE_SECRET",
        description="key that signs session cookies (≥ 32 characters); none: a random key per process")
    accounts: Path | None = Field(None, validation_alias="KNOWLEDGE_CONSOLE_ACCOUNTS",
                                  description="accounts file (name:role:argon2-hash lines)")
    oidc_jwks_url: str | None = Field(None, validation_alias="KNOWLEDGE_CONSOLE_OIDC_JWKS_URL",
                                      description="bearer-token validation: the identity provider's keys")
    oidc_issuer: str | None = Field(None, validation_alias="KNOWLEDGE_CONSOLE_OIDC_ISSUER",
                                    description="expected iss of bearer tokens")
    oidc_audience: str | None = Field(None, validation_alias="KNOWLEDGE_CONSOLE_OIDC_AUDIENCE",
                                      description="expected aud of bearer tokens")
    oidc_roles_claim: str = Field("roles", validation_alias="KNOWLEDGE_CONSOLE_OIDC_ROLES_CLAIM",
                                  description="claim holding the roles (list or string)")
    oidc_name_claim: str = Field("preferred_username", validation_alias="KNOWLEDGE_CONSOLE_OIDC_NAME_CLAIM",
                                 description="claim naming the person in the audit (else sub)")
    oidc_client_id: str | None = Field(
        None, validation_alias="KNOWLEDGE_CONSOLE_OIDC_CLIENT_ID",
        description="browser sign-in through the identity provider (authorization code with PKCE): the client id")
    oidc_client_secret: Hidden = Field(
        None, validation_alias="KNOWLEDGE_CONSOLE_OIDC_CLIENT_SECRET",
        description="the client's secret, if the provider gave it one (none: a public client, PKCE only)")
    oidc_redirect_url: str | None = Field(
        None, validation_alias="KNOWLEDGE_CONSOLE_OIDC_REDIRECT_URL",
        description="the callback URL registered at the provider; none: /login/oidc/callback on the request's host")
    secure_cookies: bool = Field(False, validation_alias="KNOWLEDGE_CONSOLE_SECURE_COOKIES",
                                 description="1 behind TLS: cookies carry Secure")
    max_body_bytes: int = Field(64 * 1024, validation_alias="KNOWLEDGE_CONSOLE_MAX_BODY_BYTES",
                                description="larger request bodies are refused with 413")
    signin_failures_per_account: int = Field(
        5, ge=1, validation_alias="KNOWLEDGE_CONSOLE_SIGNIN_FAILURES_PER_ACCOUNT",
        description="failed sign-ins of one name in the window before it answers 429")
    signin_failures_per_address: int = Field(
        20, ge=1, validation_alias="KNOWLEDGE_CONSOLE_SIGNIN_FAILURES_PER_ADDRESS",
        description="failed sign-ins from one client address in the window before it answers 429")
    signin_window_seconds: int = Field(
        900, ge=1, validation_alias="KNOWLEDGE_CONSOLE_SIGNIN_WINDOW_SECONDS",
        description="the moving window the failed sign-ins are counted in")


# The environment ``Settings()`` reads: the process's, or the one ``Settings.from_environ`` is given.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("knowledge_settings_environ", default=None)

SECTIONS: dict[str, type[Section]] = {
    "paths": PathSettings,
    "registry": RegistrySettings,
    "build": BuildSettings,
    "object_store": ObjectStoreSettings,
    "vector_store": VectorStoreSettings,
    "facts": FactsSettings,
    "llm": LLMSettings,
    "retries": RetrySettings,
    "service": ServiceSettings,
    "console": ConsoleSection,
}


class EnvironmentSource(PydanticBaseSettingsSource):
    """Each field from its variable; a secret, when its variable is unset, from ``<VARIABLE>_FILE``.

    An empty or blank variable counts as unset (compose writes ``${VAR:-}`` as an empty string).
    A ``_FILE`` naming a missing file is an error naming the variable, not a silent default.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None):
        super().__init__(settings_cls)
        self.environ = os.environ if environ is None else environ

    def value(self, name: str, secret: bool) -> str | None:
        value = (self.environ.get(name) or "").strip()
        if value:
            return value
        file_name = (self.environ.get(f"{name}_FILE") or "").strip()
        if secret and file_name:
            try:
                return Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{name}_FILE names a file that cannot be read: {file_name} ({exc.strerror})") \
                    from None
        return None

    def section(self, model: type[BaseModel]) -> dict[str, str]:
        values = {}
        for field_name, field in model.model_fields.items():
            name = env_name(field)
            if name and (value := self.value(name, is_secret(field))) is not None:
                values[field_name] = value
        return values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads whole sections

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = self.section(self.settings_cls)
        for name in SECTIONS:
            if section := self.section(SECTIONS[name]):
                values[name] = section
        return values


class ConfigurationError(ValueError):
    """Settings that do not validate, each problem named by its environment variable."""

    @classmethod
    def of(cls, exc: ValidationError) -> ConfigurationError:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            loc = [part for part in error["loc"] if isinstance(part, str)]
            model: type[BaseModel] = Settings
            if loc and loc[0] in SECTIONS:
                model = SECTIONS[loc.pop(0)]
            field = model.model_fields.get(loc[0]) if loc else None
            name = env_name(field) if field else None
            if name and not message.startswith(name):
                shown = "" if is_secret(field) else f" (got {error['input']!r})"  # never echo a secret
                message = f"{name}: {message}{shown}"
            problems.append(message)
        return cls("; ".join(problems))


class Settings(BaseSettings):
    """Everything every plane reads, in sections; see docs/configuration.md for each variable."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    tenant_id: str = Field("default", validation_alias="KNOWLEDGE_TENANT_ID",
                           description="the deployment's tenant; every record and query is scoped by it")
    paths: PathSettings = Field(default_factory=PathSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    build: BuildSettings = Field(default_factory=BuildSettings)
    object_store: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    facts: FactsSettings = Field(default_factory=FactsSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    retries: RetrySettings = Field(default_factory=RetrySettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    console: ConsoleSection = Field(default_factory=ConsoleSection)

    def __init__(self, **values: Any):
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError.of(exc) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        # The constructor's values, then the one environment source; no .env file, no other source.
        return init_settings, EnvironmentSource(settings_cls, _ENVIRON.get())

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **values: Any) -> Settings:
        """Settings from an explicit environment (a compose service's, a test's), not the process's."""
        token = _ENVIRON.set(environ)
        try:
            return cls(**values)
        finally:
            _ENVIRON.reset(token)

    def updated(self, **sections: Any) -> Settings:
        """A copy with some fields changed (``build={"max_file_bytes": 1000}``), validated again.

        A new ``paths.data_dir`` takes along what followed the old one (the cache, the Dagster home,
        the SQLite registry) unless they were set elsewhere or are given here too."""
        values = self.model_dump()  # every field given: the environment cannot change any
        paths = sections.get("paths")
        if isinstance(paths, dict) and "data_dir" in paths:
            old = self.paths.data_dir
            for name, derived in (("cache_dir", old / "cache"), ("dagster_home", old / "dagster")):
                if values["paths"][name] == derived:
                    values["paths"][name] = None  # derived again from the new data dir
            if self.registry.url.get_secret_value() == _sqlite_registry(old):
                values["registry"]["url"] = ""
        for key, value in sections.items():
            values[key] = {**values[key], **value} if isinstance(value, dict) else value
        return type(self)(**values)

    @model_validator(mode="before")
    @classmethod
    def _registry_defaults_to_the_data_dir(cls, data: Any) -> Any:
        if isinstance(data, dict) and not _given(data.get("registry"), "url"):
            paths = data.get("paths")
            paths = paths if isinstance(paths, PathSettings) else PathSettings.model_validate(paths or {})
            registry = data.get("registry")
            registry = registry.model_dump() if isinstance(registry, RegistrySettings) else dict(registry or {})
            data = {**data, "paths": paths,
                    "registry": {**registry, "url": _sqlite_registry(paths.data_dir)}}
        return data

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        validate_tenant_id(value)
        return value


def _sqlite_registry(data_dir: Path) -> str:
    """The embedded default registry of a data dir."""
    return f"sqlite:///{data_dir / 'registry.db'}"


def _given(section: Any, field: str) -> bool:
    if isinstance(section, BaseModel):
        value = getattr(section, field)
        return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)
    return bool(isinstance(section, dict) and section.get(field))

