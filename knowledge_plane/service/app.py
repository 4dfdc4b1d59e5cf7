"""The FastAPI application: routers, body limit, lifespan (alias poller) and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from knowledge_plane.service.metrics import exporter, instrument
from knowledge_plane.service.middleware import BodySizeLimit
from knowledge_plane.service.routers import aurora, caller_apps, health, query
from knowledge_plane.service.state import ServiceState
from knowledge_plane.serving.query_engine import NamespacesQuarantined, QueryEmbedder
from knowledge_plane.settings import ServiceSettings, Settings
from knowledge_plane.storage.registry import MissingRegistryTable

DESCRIPTION = """Read-only access to the knowledge the build plane published.

Every answer comes from the index versions the `@latest` aliases point to, from the namespaces
granted to the caller (`X-API-Key`, or `Authorization: Bearer` with a JWT or an API key), never from
anywhere else. `/api/…` is the same service in Aurora Nexus's terms. There is no write route."""

# The service decides which forwarding headers to believe (KNOWLEDGE_TRUSTED_PROXIES); uvicorn's own
# default would rewrite the client address from X-Forwarded-For sent by 127.0.0.1 before we see it.
UVICORN_OPTIONS: dict[str, Any] = {"proxy_headers": False}
# Clearer words than pydantic's for the inputs crafted to break a JSON service.
_MESSAGES = {
    "string_unicode": "not valid text: it holds a lone UTF-16 surrogate (\\ud800-\\udfff)",
    "finite_number": "must be a finite number (NaN, Infinity and out-of-range values are refused)",
}


def _application(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None) -> FastAPI:
    app = FastAPI(title="Knowledge Plane query service", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    for module in (query, health, caller_apps, aurora):
        app.include_router(module.router)
    app.add_exception_handler(MissingRegistryTable, _missing_table)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(NamespacesQuarantined, _quarantined)
    return app


def _safe_loc(part: Any) -> str | int:
    # A field name comes from the body (extra keys are refused by name): bounded and always encodable.
    if isinstance(part, int):
        return part
    return str(part)[:64].encode("utf-8", "backslashreplace").decode("utf-8")


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each invalid field and why — never echoing the input, which may not even be
    serialisable (NaN, lone surrogates) and must not reach a log or a proxy verbatim."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"type": e["type"], "loc": [_safe_loc(p) for p in e["loc"]],
               "msg": _MESSAGES.get(e["type"], e["msg"])} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _quarantined(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": "5"})


async def _missing_table(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def openapi_schema() -> dict[str, Any]:
    """The service's OpenAPI document, without starting anything (publishing, contract tests)."""
    return _application().openapi()


def create_app(settings: Settings | None = None, service: ServiceSettings | None = None,
               embedder: QueryEmbedder | None = None) -> FastAPI:
    """Build the service; an invalid KNOWLEDGE_API_KEYS fails here, at start-up."""
    settings = settings or Settings()
    service = service or settings.service
    state = ServiceState(settings, service, embedder)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            with exporter(app.state.metrics, service.metrics_port) as app.state.metrics_server:
                yield
        finally:
            state.stop()

    app = _application(lifespan)
    app.state.service = state
    app.add_middleware(BodySizeLimit, max_bytes=service.max_body_bytes)
    instrument(app, lambda: state.snapshot)
    return app
