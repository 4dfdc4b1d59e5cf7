"""The query service's configuration: core settings (data dir, tenant, registry) plus its own knobs.

Every value comes from the environment (names in DESIGN.md's configuration contract); the
retrieval defaults are the calibrated ones of ``knowledge_plane.serving.retrieval``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge_plane.serving.retrieval import RetrievalConfig, parse_thresholds
from knowledge_plane.settings import env_value


class ServiceSettings(BaseSettings):
    """Settings read by the query service only (the build plane never sees API keys)."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    api_keys: SecretStr = Field(
        SecretStr(""), validation_alias="KNOWLEDGE_API_KEYS",
        description="comma-separated actor=key or actor=sha256:<hex>; empty: every query is 401")
    enforce_caller_app_registry: bool = Field(
        False, validation_alias="ENFORCE_CALLER_APP_REGISTRY",
        description="reject a caller_app that is not registered and active with 400")
    rate_limit_per_minute: int = Field(
        10, ge=1, validation_alias="KNOWLEDGE_RATE_LIMIT_PER_MINUTE",
        description="requests per minute per API key, and failed authentications per client address")
    trusted_proxies: str = Field(
        "", validation_alias="KNOWLEDGE_TRUSTED_PROXIES",
        description="comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For is "
                    "believed; empty: the header is ignored and the peer address is the client")
    threads_per_request: int = Field(
        1, ge=1, validation_alias="KNOWLEDGE_THREADS_PER_REQUEST",
        description="torch and BLAS threads a request uses; requests run in parallel, one core each")
    max_body_bytes: int = Field(16 * 1024, ge=1024, validation_alias="KNOWLEDGE_MAX_BODY_BYTES")
    alias_poll_seconds: float = Field(
        1.0, gt=0, le=5, validation_alias="KNOWLEDGE_ALIAS_POLL_SECONDS",
        description="how often the aliases are read; a moved alias is served within this plus the load time")
    dense_weight: float = Field(1.0, ge=0, validation_alias="KNOWLEDGE_DENSE_WEIGHT",
                                description="reciprocal-rank-fusion weight of the dense ranking")
    bm25_weight: float = Field(1.0, ge=0, validation_alias="KNOWLEDGE_BM25_WEIGHT",
                               description="reciprocal-rank-fusion weight of the BM25 ranking")
    dense_share: float = Field(0.7, ge=0, le=1, validation_alias="KNOWLEDGE_DENSE_SHARE",
                               description="score = share × cosine + (1 − share) × lexical coverage")
    score_thresholds: str = Field(
        "", validation_alias="KNOWLEDGE_SCORE_THRESHOLDS",
        description="overrides of the per-namespace thresholds, e.g. 'default=0.36,internal:*=0.37'")

    @model_validator(mode="before")
    @classmethod
    def _keys_from_secret_file(cls, data: Any) -> Any:
        # Docker/Kubernetes secrets: KNOWLEDGE_API_KEYS_FILE names a file holding the keys.
        if isinstance(data, dict) and not data.get("KNOWLEDGE_API_KEYS") and not data.get("api_keys"):
            keys = env_value("KNOWLEDGE_API_KEYS")
            if keys:
                data = {**data, "KNOWLEDGE_API_KEYS": keys}
        return data

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

    def retrieval_config(self) -> RetrievalConfig:
        return RetrievalConfig(dense_weight=self.dense_weight, bm25_weight=self.bm25_weight,
                               dense_share=self.dense_share, thresholds=parse_thresholds(self.score_thresholds))
