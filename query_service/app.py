"""The FastAPI application: routers, body limit, lifespan (alias poller) and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from core.query_engine import QueryEmbedder
from core.registry import MissingRegistryTable
from core.settings import Settings
from query_service.config import ServiceSettings
from query_service.middleware import BodySizeLimit
from query_service.routers import caller_apps, health, query
from query_service.state import ServiceState

DESCRIPTION = """Read-only access to the knowledge the build plane published.

Every answer comes from the index versions the `@latest` aliases point to, from the namespaces
granted to the API key (`X-API-Key`), never from anywhere else. There is no write route."""


def _application(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None) -> FastAPI:
    app = FastAPI(title="Knowledge Plane query service", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    for module in (query, health, caller_apps):
        app.include_router(module.router)
    app.add_exception_handler(MissingRegistryTable, _missing_table)
    return app


async def _missing_table(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def openapi_schema() -> dict[str, Any]:
    """The service's OpenAPI document, without starting anything (publishing, contract tests)."""
    return _application().openapi()


def create_app(settings: Settings | None = None, service: ServiceSettings | None = None,
               embedder: QueryEmbedder | None = None) -> FastAPI:
    """Build the service; an invalid KNOWLEDGE_API_KEYS fails here, at start-up."""
    settings = settings or Settings.from_env()
    service = service or ServiceSettings()
    state = ServiceState(settings, service, embedder)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = _application(lifespan)
    app.state.service = state
    app.add_middleware(BodySizeLimit, max_bytes=service.max_body_bytes)
    return app
