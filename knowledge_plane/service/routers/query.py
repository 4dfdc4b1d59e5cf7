"""POST /knowledge/query: the only way to read knowledge, and it cannot write any."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response

from knowledge_plane.service.deps import ActorDep, EndUserDep, SnapshotDep, StateDep, checked_caller_app
from knowledge_plane.service.metrics import note_answer
from knowledge_plane.service.schemas import ErrorResponse, QueryBody, QueryResponse
from knowledge_plane.service.state import ServiceState
from knowledge_plane.serving.access import Actor
from knowledge_plane.serving.query_engine import QueryRequest
from knowledge_plane.serving.snapshot import Snapshot

router = APIRouter(prefix="/knowledge", tags=["query"])

ERRORS = {
    400: {"model": ErrorResponse, "description": "caller_app invalide, inconnu ou inactif"},
    401: {"model": ErrorResponse, "description": "missing or invalid X-API-Key or bearer token"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    429: {"model": ErrorResponse, "description": "rate limit exceeded (end user or actor); see Retry-After"},
    500: {"model": ErrorResponse, "description": "the caller-app registry table is missing"},
    503: {"model": ErrorResponse, "description": "quarantined: the published versions have not passed their checks"},
}


def answer(state: ServiceState, actor: Actor, snapshot: Snapshot, request: QueryRequest, started: float,
           render: Callable[[dict[str, Any]], str], end_user: str | None = None) -> Response:
    """Run the engine, render its answer in the route's shape, log the query off the request path."""
    request_id = uuid.uuid4().hex
    outcome = state.engine.answer(snapshot, actor, request, request_id)
    note_answer(actor, request.caller_app or "unknown", outcome.response, outcome.flags)
    serialise_started = time.perf_counter()
    content = render(outcome.response)
    timings = {**outcome.timings_ms, "serialise": (time.perf_counter() - serialise_started) * 1000}
    latency_ms = (time.perf_counter() - started) * 1000
    if state.query_log is not None:
        state.query_log.write({**outcome.log_entry(actor, request, latency_ms), "end_user_hash": end_user})
    server_timing = ", ".join(f"{name};dur={value:.2f}" for name, value in {**timings, "total": latency_ms}.items())
    return Response(content, media_type="application/json",
                    headers={"X-Request-ID": request_id, "Server-Timing": server_timing})


@router.post("/query", response_model=QueryResponse, responses=ERRORS)
def query(body: QueryBody, actor: ActorDep, snapshot: SnapshotDep, state: StateDep, end_user: EndUserDep) -> Response:
    """Answer a question from the namespaces granted to the API key.

    Searches only the versions the @latest aliases point to. `status` is `success`,
    `low_confidence` (answered, weak or unverified sources), `needs_clarification` (fewer than
    three passages above the namespace's threshold, or than the documents of the packs or
    applications asked for: no passages, `suggestions` instead), `refused` (the chatbot's only
    sources are unverified) or `redirect` (the question holds personal data: nothing searched,
    `message` points to the customer account area). `namespaces`, `pack_ids` and `source_apps`
    can only narrow the actor's grant; what lies outside it is ignored.
    """
    started = time.perf_counter()
    caller_app = checked_caller_app(state, body.caller_app)
    request = QueryRequest(
        question=body.question, namespaces=tuple(body.namespaces or ()), tenant_id=body.tenant_id,
        pack_ids=body.all_pack_ids(), source_app=body.source_app,
        source_apps=tuple(body.source_apps) if body.source_apps is not None else None, workspace=body.workspace,
        caller_app=caller_app,
        thread_id=body.thread_id, top_k=body.top_k,
    )
    return answer(state, actor, snapshot, request, started,
                  lambda reply: QueryResponse.model_validate(reply).model_dump_json(), end_user)
