"""Dependencies of the routes, with their Annotated aliases (``ActorDep``, ``StateDep``, ``SnapshotDep``)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from knowledge_plane.service.ratelimit import client_address
from knowledge_plane.service.state import ServiceState
from knowledge_plane.serving.access import Actor, key_fingerprint
from knowledge_plane.serving.snapshot import Snapshot
from knowledge_plane.storage.registry import get_caller_app

CALLER_APP_RE = re.compile(r"[a-z0-9_-]{2,64}")
UNKNOWN_CALLER_APP = "unknown"
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the caller's API key")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def _too_many(wait: int) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "trop de requêtes, réessayez plus tard",
                         headers={"Retry-After": str(wait)})


def current_actor(request: Request, state: StateDep, api_key: Annotated[str | None, Security(api_key_header)]) -> Actor:
    """The actor owning the X-API-Key; 401 without a valid key, 429 over the rate limits.

    The key is checked first: only a failure is charged to the client address, so guesses from an
    address (or from the proxy everyone shares) never lock out a valid key.
    """
    actor = state.keyring.authenticate(api_key)
    if actor is None:
        wait = state.auth_failure_limiter.hit(client_address(request, state.trusted_proxies))
        if wait:
            raise _too_many(wait)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "clé API absente ou invalide",
                            headers={"WWW-Authenticate": "APIKey"})
    wait = state.key_limiter.hit(key_fingerprint(api_key or ""))
    if wait:
        raise _too_many(wait)
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


def optional_actor(request: Request, state: StateDep,
                   api_key: Annotated[str | None, Security(api_key_header)]) -> Actor | None:
    """None without a key (a load balancer's probe); with one, the same checks as ``current_actor``."""
    return None if api_key is None else current_actor(request, state, api_key)


OptionalActorDep = Annotated[Actor | None, Depends(optional_actor)]


def serving_snapshot(state: StateDep) -> Snapshot:
    """The snapshot to answer from; 503 while nothing at all can be served."""
    snapshot = state.snapshot
    if snapshot is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "service en quarantaine : les versions publiées n'ont pas (encore) passé leurs contrôles, "
                            "voir /knowledge/health", headers={"Retry-After": "5"})
    return snapshot


SnapshotDep = Annotated[Snapshot, Depends(serving_snapshot)]


def checked_caller_app(state: ServiceState, name: str | None) -> str:
    """The caller_app to log: validated, and registered and active when the registry is enforced."""
    if name is None:
        name = UNKNOWN_CALLER_APP
    elif not CALLER_APP_RE.fullmatch(name):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "caller_app invalide : attendu ^[a-z0-9_-]{2,64}$")
    if state.service.enforce_caller_app_registry:
        app = get_caller_app(state.registry, name)  # MissingRegistryTable → 500 with its message
        if app is None or not app.active:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "caller_app inconnu ou inactif")
    return name
