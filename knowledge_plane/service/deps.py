"""Dependencies of the routes, with their Annotated aliases (``ActorDep``, ``StateDep``, ``SnapshotDep``)."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from knowledge_plane.service.bearer import BearerRejected, VerifierUnavailable, looks_like_jwt
from knowledge_plane.service.metrics import note_actor
from knowledge_plane.service.ratelimit import client_address, end_user, end_user_id
from knowledge_plane.service.state import ServiceState
from knowledge_plane.serving.access import Actor
from knowledge_plane.serving.snapshot import Snapshot
from knowledge_plane.storage.registry import get_caller_app
from knowledge_plane.storage.retention import end_user_hash

CALLER_APP_RE = re.compile(r"[a-z0-9_-]{2,64}")
UNKNOWN_CALLER_APP = "unknown"
log = logging.getLogger("knowledge.query")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the caller's API key")
bearer_scheme = HTTPBearer(auto_error=False, description="a JWT from the callers' login service, or an API key")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def too_many(wait: int) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "trop de requêtes, réessayez plus tard",
                         headers={"Retry-After": str(wait)})


def _unauthorized(detail: str, scheme: str = "APIKey") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": scheme})


def _authenticate(state: ServiceState, api_key: str | None,
                  bearer: HTTPAuthorizationCredentials | None) -> tuple[Actor | None, str | None, str]:
    """(actor, JWT subject, scheme) of the credentials; actor None when they authenticate nobody."""
    if api_key is not None or bearer is None:
        return state.keyring.authenticate(api_key), None, "APIKey"
    token = bearer.credentials
    if state.jwt_verifier is None or not looks_like_jwt(token):
        return state.keyring.authenticate(token), None, "Bearer"  # an API key sent as a bearer token
    try:
        identity = state.jwt_verifier.verify(token)
    except VerifierUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"}) from None
    except BearerRejected as exc:
        log.info("bearer token refused: %s", exc)
        return None, None, 'Bearer error="invalid_token"'
    return identity.actor, identity.subject, "Bearer"


def current_actor(request: Request, state: StateDep, api_key: Annotated[str | None, Security(api_key_header)],
                  bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None) -> Actor:
    """The actor owning the X-API-Key or the bearer token; 401 without valid credentials, 429 over
    its end user's or its own rate limit.

    The credentials are checked first: only a failure is charged to the client address, so guesses
    from an address (or from the proxy everyone shares) never lock out a valid key. The end user is
    a JWT's subject, else the X-End-User-ID the calling backend sends, else the client address.
    """
    actor, subject, scheme = _authenticate(state, api_key, bearer)
    if actor is None:
        wait = state.auth_failure_limiter.hit(client_address(request, state.trusted_proxies))
        if wait:
            raise too_many(wait)
        raise _unauthorized("clé API ou jeton absent ou invalide", scheme)
    note_actor(actor)  # a 429 below is counted against the actor it refuses
    user = f"sub:{subject}" if subject is not None else end_user(request, state.trusted_proxies)
    wait = state.limits.hit(actor.name, user)
    if wait:
        raise too_many(wait)
    request.state.end_user_id = subject if subject is not None else end_user_id(request, state.trusted_proxies)
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


def logged_end_user(request: Request, state: StateDep, _actor: ActorDep) -> str | None:
    """The end user as the query log records them: the keyed hash of their id (the JWT subject, else
    X-End-User-ID, else the client address), or None when no KNOWLEDGE_QUERY_LOG_END_USER_KEY is set."""
    key = state.settings.registry.query_log_end_user_key
    if key is None or not key.get_secret_value():
        return None
    return end_user_hash(key.get_secret_value(), request.state.end_user_id)


EndUserDep = Annotated[str | None, Depends(logged_end_user)]


def optional_actor(request: Request, state: StateDep, api_key: Annotated[str | None, Security(api_key_header)],
                   bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
                   ) -> Actor | None:
    """None without credentials (a load balancer's probe); with some, the same checks as ``current_actor``."""
    return None if api_key is None and bearer is None else current_actor(request, state, api_key, bearer)


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
