"""The governance console's FastAPI application: pages (Jinja2 + htmx) and the REST API under /api/v1.

Server-rendered pages keep the console a single Python process with no build step: Jinja2 escapes
every value it prints (fact values and document titles come from documents anyone could write), and
htmx (vendored in static/, no CDN) adds partial page loads for the queue without a JavaScript
framework. The console is build-plane software: it opens the registry and the fact store with write
credentials, which is why it is a separate service from the read-only query service.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from knowledge_plane.console.auth import Accounts, AuthError, BearerTokens, Sessions
from knowledge_plane.console.config import ConsoleSettings
from knowledge_plane.console.filters import highlight, timeline_svg
from knowledge_plane.console.oidc_login import BrowserSignIn
from knowledge_plane.console.queue import QueueError
from knowledge_plane.console.security import BodyLimit, Forbidden, NotSignedIn, session_middleware
from knowledge_plane.console.service import Console, NotFound
from knowledge_plane.console.signin_limit import SignInLimit
from knowledge_plane.facts.review import ReviewError
from knowledge_plane.facts.store import UnknownFact
from knowledge_plane.settings import Settings

HERE = Path(__file__).resolve().parent


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    templates: Jinja2Templates = request.app.state.templates
    context = {"status": status, "message": message, "principal": getattr(request.state, "principal", None),
               "csrf": request.state.session.get("csrf", "")}
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


def create_app(settings: Settings | None = None, console_settings: ConsoleSettings | None = None,
               console: Console | None = None) -> FastAPI:
    """The console over ``settings``' registry and fact store (``Settings()`` if not given)."""
    from knowledge_plane.console import api, pages

    settings = settings or Settings()
    console_settings = console_settings or ConsoleSettings.of(settings.console, settings.service.trusted_networks())
    app = FastAPI(title="Knowledge Plane governance console",
                  description="Review facts, settle conflicts, administer packs, caller apps and index aliases. "
                              "Every route needs a signed-in role: viewer, reviewer or admin.",
                  version="1")
    app.state.console = console or Console(settings)
    app.state.accounts = Accounts(console_settings.accounts_file)
    app.state.tokens = BearerTokens(console_settings)
    oidc = console_settings.oidc
    app.state.browser_sign_in = BrowserSignIn(oidc, app.state.tokens) if oidc and oidc.client_id else None
    app.state.sessions = Sessions(console_settings)
    app.state.signin_limit = SignInLimit(console_settings.signin_failures_per_account,
                                         console_settings.signin_failures_per_address,
                                         console_settings.signin_window_seconds)
    app.state.trusted_proxies = console_settings.trusted_proxies
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))  # autoescape on for .html
    app.state.templates.env.filters.update(highlight=highlight, timeline_svg=timeline_svg)
    app.middleware("http")(session_middleware)
    app.add_middleware(BodyLimit, limit=console_settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, _: NotSignedIn) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "sign in first: a bearer token or a console session is required"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(AuthError)
    async def bad_credential(request: Request, exc: AuthError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(request, 403, str(exc))

    @app.exception_handler(NotFound)
    @app.exception_handler(UnknownFact)
    async def not_found(request: Request, exc: LookupError) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(ReviewError)
    @app.exception_handler(QueueError)
    @app.exception_handler(ValueError)
    async def refused(request: Request, exc: ValueError) -> Response:
        return _error(request, 409 if isinstance(exc, ReviewError) else 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in exc.errors())
        return _error(request, 422, f"invalid or missing form fields: {fields}")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return app
