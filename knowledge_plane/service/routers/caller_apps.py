"""GET /knowledge/caller-apps: the active applications of the caller-app registry."""

from __future__ import annotations

from fastapi import APIRouter

from knowledge_plane.service.deps import ActorDep, StateDep
from knowledge_plane.service.schemas import CallerAppOut, CallerAppsResponse, ErrorResponse
from knowledge_plane.storage.registry import active_caller_apps

router = APIRouter(prefix="/knowledge", tags=["caller-apps"])


@router.get("/caller-apps", response_model=CallerAppsResponse, responses={
    401: {"model": ErrorResponse}, 429: {"model": ErrorResponse},
    500: {"model": ErrorResponse, "description": "the caller-app registry table is missing"}})
def list_caller_apps(actor: ActorDep, state: StateDep) -> CallerAppsResponse:
    """The active caller apps a request may name in `caller_app` (requires an API key)."""
    return CallerAppsResponse(caller_apps=[CallerAppOut(name=a.name, created_at=a.created_at)
                                           for a in active_caller_apps(state.registry)])
