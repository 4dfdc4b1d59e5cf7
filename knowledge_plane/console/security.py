"""Request-level security: the session middleware, the body-size limit, and the role dependencies.

``require(role)`` is the one gate every page and API route declares: it finds the principal (bearer
token, else session cookie), refuses anonymous requests (401, or a redirect to the sign-in page for
a page), refuses a role too low (403), and for unsafe methods made with the session cookie checks
the CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from knowledge_plane.console.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Principal,
    csrf_matches,
    new_csrf_token,
)
from knowledge_plane.console.config import ROLES

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class NotSignedIn(Exception):
    """No credential at all: a page sends the browser to the sign-in form, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this (or the CSRF token does not match)."""


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies above a size with 413 before any route reads them (announced or streamed)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send)
        received, started, exceeded = 0, False, False

        async def limited() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            if exceeded:  # FastAPI turns a failed body read into its own 400: answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = f"request body too large: the console accepts at most {self.limit} bytes".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def session_middleware(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
    """Load the signed session (or start one holding a fresh CSRF token); write it back if it changed."""
    sessions = request.app.state.sessions
    session = sessions.load(request.cookies.get(SESSION_COOKIE))
    dirty = "csrf" not in session
    if dirty:
        session = {"csrf": new_csrf_token()}
    request.state.session = session
    request.state.session_dirty = dirty
    response = await call_next(request)
    if request.state.session_dirty:
        response.set_cookie(value=sessions.dump(request.state.session), **sessions.cookie_args())
    response.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def current_principal(request: Request) -> Principal | None:
    if hasattr(request.state, "principal"):
        return request.state.principal
    principal = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = request.app.state.tokens.principal(header[7:].strip())  # AuthError → 401
        request.state.via_bearer = True
    elif request.state.session.get("oidc"):  # signed in through the provider: the role it granted then
        session = request.state.session
        if request.app.state.browser_sign_in is not None and session.get("role") in ROLES:
            principal = Principal(session["oidc"], session["role"], "oidc")
    else:
        name = request.state.session.get("user")
        account = request.app.state.accounts.get(name) if name else None
        if account is not None:  # a removed account's session ends here
            principal = Principal(account.name, account.role, "account")
    request.state.principal = principal
    return principal


# Declared so OpenAPI documents the bearer scheme; the header itself is read in current_principal.
_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="An OIDC access token (JWT) with a console role")


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    async def check(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        principal = current_principal(request)  # an invalid bearer token raises AuthError → 401
        if principal is None:
            raise NotSignedIn()
        if not principal.can(role):
            raise Forbidden(f"{principal.name} is signed in as {principal.role}: this needs the {role} role")
        if request.method not in SAFE_METHODS and not getattr(request.state, "via_bearer", False):
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                given = (await request.form()).get(CSRF_FIELD)
            if not csrf_matches(request.state.session.get("csrf"), given if isinstance(given, str) else None):
                raise Forbidden("the form's CSRF token is missing or does not match this session: reload the page "
                                "and try again")
        return principal

    check.__name__ = f"require_{role}"
    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Reviewer = Annotated[Principal, Depends(require("reviewer"))]
Admin = Annotated[Principal, Depends(require("admin"))]
