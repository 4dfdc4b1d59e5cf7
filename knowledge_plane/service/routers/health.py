"""GET /knowledge/health: ready or not for anyone; the quarantine checks behind it for a valid key."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response, status

from knowledge_plane.service.deps import OptionalActorDep, StateDep
from knowledge_plane.service.schemas import ErrorResponse, HealthCheck, HealthResponse

router = APIRouter(prefix="/knowledge", tags=["health"])


@router.get("/health", response_model=HealthResponse, response_model_exclude_unset=True, responses={
    503: {"model": HealthResponse}, 401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}})
def health(state: StateDep, response: Response, actor: OptionalActorDep) -> HealthResponse:
    """200 `ready` while at least one namespace is served, 503 `not_ready` otherwise.

    Without `X-API-Key` that is all (probes need no more, and callers learn nothing of the
    deployment). With a valid key: the quarantine checks (aliased version registered, readable, of
    the model's dimension and model, not empty), versions served, quarantined namespaces and
    namespaces kept on their last good version — only for the namespaces the key may read.
    """
    snapshot = state.snapshot
    ready = snapshot is not None
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    if actor is None:
        return HealthResponse(status="ready" if ready else "not_ready")
    visible = [c for c in state.checks if c.namespace is None or actor.may_read(c.namespace)]
    return HealthResponse(
        status="ready" if ready else "not_ready",
        checks=[HealthCheck(**c.to_dict()) for c in visible],
        index_versions={ns: v for ns, v in snapshot.aliases.items() if actor.may_read(ns)} if ready else {},
        quarantined=sorted(ns for ns in snapshot.quarantined if actor.may_read(ns)) if ready else [],
        stale={ns: v for ns, v in snapshot.stale.items() if actor.may_read(ns)} if ready else {},
        model=state.model, dimension=state.dimension,
        loaded_at=dt.datetime.fromtimestamp(snapshot.loaded_at, dt.UTC) if ready else None,
    )
