"""Request and response bodies of the query service (they are the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal["success", "low_confidence", "needs_clarification", "refused", "redirect"]


class QueryBody(BaseModel):
    """A question and the optional filters that narrow where its answer may come from."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "Combien de temps ai-je pour retourner une pièce ?", "caller_app": "aurora_nexus_ui"}]})

    question: str = Field(min_length=1, max_length=1000, description="the user's question, 1-1000 characters")
    tenant_id: str | None = Field(None, max_length=64, description="must be the deployment's tenant if given")
    pack_id: str | None = Field(None, max_length=128, description="only passages of this pack")
    pack_ids: list[Annotated[str, Field(max_length=128)]] | None = Field(
        None, max_length=50, description="only passages of these packs (with pack_id: either)")
    source_app: str | None = Field(None, max_length=128, description="only passages ingested by this application")
    source_apps: list[Annotated[str, Field(max_length=128)]] | None = Field(
        None, max_length=50, description="only passages ingested by these applications (with source_app: either)")
    workspace: str | None = Field(None, max_length=128, description="only passages uploaded into this workspace "
                                                                     "of the source_app (requires source_app)")
    caller_app: str | None = Field(
        None, description="the calling application, ^[a-z0-9_-]{2,64}$; 'unknown' when absent")
    thread_id: str | None = Field(None, max_length=128, description="the conversation, for the caller's own tracing")
    namespaces: list[Annotated[str, Field(max_length=160)]] | None = Field(
        None, max_length=32, description="narrow the search to some of the key's namespaces (never widens it)")
    top_k: int = Field(5, ge=1, le=20, description="passages returned at most")

    @model_validator(mode="after")
    def _workspace_needs_source_app(self) -> QueryBody:
        if self.workspace is not None and self.source_app is None and self.source_apps is None:
            raise ValueError("workspace requires source_app")
        return self

    def all_pack_ids(self) -> tuple[str, ...] | None:
        return merged(self.pack_id, self.pack_ids)


def merged(one: str | None, many: list[str] | None) -> tuple[str, ...] | None:
    """A single value and a list of the same filter as one tuple (None when neither is given)."""
    if one is None and many is None:
        return None
    return tuple(dict.fromkeys([*([one] if one is not None else []), *(many or [])]))


class Passage(BaseModel):
    chunk_id: str
    doc_id: str
    doc_version: str
    citation: str = Field(description="doc_id@doc_version")
    title: str
    namespace: str
    source_path: str
    location: str
    text: str
    score: float = Field(description="dense_share × cosine + (1 − dense_share) × lexical coverage (dense_share "
                                     "0.7 by default): the scale the per-namespace thresholds apply to")
    truth_level: str
    index_version: str
    pack_id: str | None = None
    source_app: str | None = None
    language: str | None = None


class QueryResponse(BaseModel):
    status: Status
    passages: list[Passage]
    confidence: float = Field(ge=0, le=1)
    facts: list[dict[str, Any]]
    suggestions: list[str]
    message: str | None = None
    index_versions: dict[str, str] = Field(description="{namespace: version} of the namespaces searched")
    request_id: str


class ErrorResponse(BaseModel):
    detail: Any


class HealthCheck(BaseModel):
    name: str
    passed: bool
    detail: str
    namespace: str | None = None
    version: str | None = None


class HealthResponse(BaseModel):
    """Without a key: only ``status``. With a valid key: the detail, for the namespaces the key may read."""

    status: Literal["ready", "not_ready"] = Field(
        description="ready: at least one namespace is served (503 with not_ready otherwise)")
    checks: list[HealthCheck] | None = None
    index_versions: dict[str, str] | None = Field(None, description="{namespace: version served}")
    quarantined: list[str] | None = Field(None, description="namespaces with no version that passed its checks: "
                                                            "503 for the keys that read them")
    stale: dict[str, str | None] | None = Field(None, description="{namespace: aliased version that failed its checks} "
                                                           "while the last good version is still served")
    model: str | None = None
    dimension: int | None = None
    loaded_at: dt.datetime | None = None


class CallerAppOut(BaseModel):
    name: str
    created_at: dt.datetime


class CallerAppsResponse(BaseModel):
    caller_apps: list[CallerAppOut]


class AuroraQuery(BaseModel):
    """Aurora Nexus's documented query payload (``POST /api/query``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "Couple de serrage des roues ?", "source_app": "notes", "caller_app": "aurora_nexus_ui",
         "thread_id": "t-42", "tenant_id": "default", "pack_id": "notes", "language": "fr"}]})

    query: str = Field(min_length=1, max_length=1000, description="the user's question, 1-1000 characters")
    source_app: Annotated[str, Field(max_length=128)] | Annotated[
        list[Annotated[str, Field(max_length=128)]], Field(max_length=50)] | None = Field(
        None, description="only passages ingested by this application, or by any of these")
    workspace: str | None = Field(None, max_length=128, description="only passages uploaded into this workspace "
                                                                     "of the source_app (requires source_app)")
    caller_app: str | None = Field(
        None, description="the calling application, ^[a-z0-9_-]{2,64}$; 'unknown' when absent")
    thread_id: str | None = Field(None, max_length=128, description="the conversation; recorded in the query log")
    tenant_id: str | None = Field(None, max_length=64, description="must be the deployment's tenant if given")
    pack_id: str | None = Field(None, max_length=128, description="only passages of this pack")
    pack_ids: list[Annotated[str, Field(max_length=128)]] | None = Field(
        None, max_length=50, description="only passages of these packs (with pack_id: either)")
    language: str | None = Field(None, min_length=2, max_length=16, description="passages in this language first")
    language_only: bool = Field(False, description="only passages in `language`")
    top_k: int = Field(5, ge=1, le=20, description="results returned at most")

    @model_validator(mode="after")
    def _workspace_needs_source_app(self) -> AuroraQuery:
        if self.workspace is not None and self.source_app is None:
            raise ValueError("workspace requires source_app")
        return self


class AuroraResult(BaseModel):
    chunk_id: str
    document_id: str
    document_version: str
    title: str
    content: str
    score: float
    pack_id: str | None
    source_app: str | None
    language: str | None
    truth_level: str
    citation: str


class AuroraAnswer(BaseModel):
    """The answer in Aurora Nexus's terms: ``results`` are the passages, named as in its Qdrant payloads."""

    status: Status
    results: list[AuroraResult]
    confidence: float = Field(ge=0, le=1)
    suggestions: list[str]
    message: str | None = None
    thread_id: str | None = None
    request_id: str
