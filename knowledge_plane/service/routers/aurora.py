"""The Aurora Nexus route family: ``POST /api/query`` and ``GET /api/caller-apps``, in its terms.

The same engine, guards, grants and rate limits as ``/knowledge/query``; only the payload and the
answer are Aurora's: ``query`` for the question, ``source_app`` one application or a list,
``language`` to put (or, with ``language_only``, keep) the passages in that language first, and
``thread_id`` recorded in the query log. Aurora clients authenticate with
``Authorization: Bearer <JWT>`` from their login service (knowledge_plane.service.bearer) or an
API key.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from knowledge_plane.service.deps import (
    ActorDep,
    EndUserDep,
    SnapshotDep,
    StateDep,
    checked_caller_app,
    too_many,
)
from knowledge_plane.service.ratelimit import client_address
from knowledge_plane.service.routers.query import ERRORS, answer
from knowledge_plane.service.schemas import (
    AuroraAnswer,
    AuroraQuery,
    AuroraResult,
    CallerAppOut,
    CallerAppsResponse,
    ErrorResponse,
    merged,
)
from knowledge_plane.serving.query_engine import QueryRequest
from knowledge_plane.storage.registry import active_caller_apps

router = APIRouter(prefix="/api", tags=["aurora-nexus"])


@router.post("/query", response_model=AuroraAnswer, responses=ERRORS)
def aurora_query(body: AuroraQuery, actor: ActorDep, snapshot: SnapshotDep, state: StateDep,
                 end_user: EndUserDep) -> Response:
    """Aurora Nexus's query: the documented payload, answered from the actor's grant like `/knowledge/query`."""
    started = time.perf_counter()
    caller_app = checked_caller_app(state, body.caller_app)
    apps = body.source_app if isinstance(body.source_app, list) else None
    request = QueryRequest(
        question=body.query, tenant_id=body.tenant_id, pack_ids=merged(body.pack_id, body.pack_ids),
        source_app=body.source_app if isinstance(body.source_app, str) else None,
        source_apps=tuple(apps) if apps is not None else None, workspace=body.workspace, caller_app=caller_app,
        thread_id=body.thread_id,
        top_k=body.top_k, language=body.language, only_language=body.language_only,
    )
    return answer(state, actor, snapshot, request, started, lambda reply: in_aurora_terms(reply, body.thread_id),
                  end_user)


def in_aurora_terms(reply: dict[str, Any], thread_id: str | None) -> str:
    """The engine's answer as Aurora Nexus reads it: passages are ``results`` named as in its payloads."""
    results = [AuroraResult(chunk_id=p["chunk_id"], document_id=p["doc_id"], document_version=p["doc_version"],
                            title=p["title"], content=p["text"], score=p["score"], pack_id=p["pack_id"],
                            source_app=p["source_app"], language=p["language"], truth_level=p["truth_level"],
                            citation=p["citation"]) for p in reply["passages"]]
    return AuroraAnswer(status=reply["status"], results=results, confidence=reply["confidence"],
                        suggestions=reply["suggestions"], message=reply["message"], thread_id=thread_id,
                        request_id=reply["request_id"]).model_dump_json()


@router.get("/caller-apps", response_model=CallerAppsResponse, responses={
    429: {"model": ErrorResponse}, 500: {"model": ErrorResponse, "description": "the registry table is missing"}})
def aurora_caller_apps(request: Request, state: StateDep) -> CallerAppsResponse:
    """The active caller apps (public, as Aurora Nexus documents it: no credentials; limited per client address)."""
    wait = state.limits.hit("public", "ip:" + client_address(request, state.trusted_proxies))
    if wait:
        raise too_many(wait)
    return CallerAppsResponse(caller_apps=[CallerAppOut(name=a.name, created_at=a.created_at)
                                           for a in active_caller_apps(state.registry)])
