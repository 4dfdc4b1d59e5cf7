"""GET /knowledge/health: is the service serving, and the quarantine checks behind the answer."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response, status

from query_service.deps import StateDep
from query_service.schemas import HealthCheck, HealthResponse

router = APIRouter(prefix="/knowledge", tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def health(state: StateDep, response: Response) -> HealthResponse:
    """Serving status and each quarantine check (aliased version registered, readable, of the
    model's dimension and model, not empty). 200 while serving, 503 while quarantined."""
    snapshot = state.snapshot
    if snapshot is None:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthResponse(
        status="serving" if snapshot is not None else "quarantined",
        checks=[HealthCheck(**c.to_dict()) for c in state.checks],
        index_versions=snapshot.aliases if snapshot is not None else {},
        model=state.model, dimension=state.dimension,
        loaded_at=dt.datetime.fromtimestamp(snapshot.loaded_at, dt.UTC) if snapshot is not None else None,
    )
