"""The console's pages: sign-in, review queue, fact, conflicts, timeline, entity types, administration,
audit log and query insight. Forms post back here (CSRF-checked by ``require``) and redirect with a
one-time message kept in the session."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from knowledge_plane.console.auth import csrf_matches, new_csrf_token
from knowledge_plane.console.insight import insight
from knowledge_plane.console.oidc_login import SignInFailed
from knowledge_plane.console.queue import SORTS, QueueError, QueueFilter
from knowledge_plane.console.security import Admin, Forbidden, Reviewer, Viewer
from knowledge_plane.console.service import Console, NotFound
from knowledge_plane.facts.model import CONFLICTED, PROPOSED, STATUSES, TYPE_REJECTED, TYPE_STATUSES
from knowledge_plane.service.ratelimit import client_address

router = APIRouter(include_in_schema=False)


def _console(request: Request) -> Console:
    return request.app.state.console


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    session = request.state.session
    flash = session.pop("flash", None)
    if flash:
        request.state.session_dirty = True
    return request.app.state.templates.TemplateResponse(
        request, template, {"principal": getattr(request.state, "principal", None), "csrf": session["csrf"],
                            "flash": flash, **context}, status_code=status_code)


def done(request: Request, message: str, to: str) -> RedirectResponse:
    request.state.session["flash"] = message
    request.state.session_dirty = True
    return RedirectResponse(to, status_code=303)


def _ids(value: str) -> list[str]:
    return [i for i in value.replace(",", " ").split() if i]


# -- sign-in ----------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request) -> Response:
    return render(request, "login.html", error=None)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=128)],
          password: Annotated[str, Form(max_length=1024)], csrf_token: Annotated[str, Form()] = "") -> Response:
    if not csrf_matches(request.state.session.get("csrf"), csrf_token):
        raise Forbidden("the form's CSRF token is missing or does not match this session: reload the page")
    limit, address = request.app.state.signin_limit, client_address(request, request.app.state.trusted_proxies)
    with limit.lock:
        wait = limit.wait(username, address)
        principal = None if wait else request.app.state.accounts.authenticate(username, password)
        if not wait and principal is None:
            limit.failed(username, address)
        elif principal is not None:
            limit.succeeded(username)
    if wait:
        response = render(request, "login.html", status_code=429, error=(
            f"too many failed sign-ins for this name or from this address: try again in {wait} seconds"))
        response.headers["Retry-After"] = str(wait)
        return response
    if principal is None:
        return render(request, "login.html", status_code=401, error="unknown name or wrong password")
    # a new session (and CSRF token) at sign-in: a token planted before sign-in is worthless after it
    request.state.session = {"csrf": new_csrf_token(), "user": principal.name,
                             "flash": f"signed in as {principal.name} ({principal.role})"}
    request.state.session_dirty = True
    return RedirectResponse("/queue", status_code=303)


@router.get("/login/oidc")
def oidc_start(request: Request) -> Response:
    flow = request.app.state.browser_sign_in
    if flow is None:
        raise NotFound("sign-in through an identity provider is not configured (KNOWLEDGE_CONSOLE_OIDC_CLIENT_ID)")
    try:
        url, pending = flow.start(flow.redirect_uri(str(request.url_for("oidc_callback"))))
    except SignInFailed as exc:  # the provider's discovery document is out of reach or names another issuer
        return render(request, "login.html", status_code=502, error=str(exc))
    request.state.session["oidc_pending"] = pending
    request.state.session_dirty = True
    return RedirectResponse(url, status_code=303)


@router.get("/login/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request) -> Response:
    flow = request.app.state.browser_sign_in
    if flow is None:
        raise NotFound("sign-in through an identity provider is not configured (KNOWLEDGE_CONSOLE_OIDC_CLIENT_ID)")
    pending = request.state.session.pop("oidc_pending", None)  # one use: a replayed callback finds nothing
    request.state.session_dirty = True
    try:
        principal = flow.finish(pending, dict(request.query_params))
    except SignInFailed as exc:
        return render(request, "login.html", status_code=401, error=str(exc))
    request.state.session = {"csrf": new_csrf_token(), "oidc": principal.name, "role": principal.role,
                             "flash": f"signed in as {principal.name} ({principal.role}) through the identity provider"}
    request.state.session_dirty = True
    return RedirectResponse("/queue", status_code=303)


@router.post("/logout")
def logout(request: Request, who: Viewer) -> Response:
    request.state.session = {"csrf": new_csrf_token()}
    request.state.session_dirty = True
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(who: Viewer) -> Response:
    return RedirectResponse("/queue", status_code=303)


# -- review queue -----------------------------------------------------------------------------
@router.get("/queue")
def queue(request: Request, who: Viewer, namespace: str = "", fact_type: str = "", subject: str = "",
          status: Annotated[list[str] | None, Query()] = None, critical: str = "", age: str = "",
          sort: str = "oldest", cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
          rows_only: bool = False) -> Response:
    # A filter form sends empty fields for unset filters: "" means no filter, not a bad value.
    if age and not age.isdigit():
        raise QueueError(f"age must be a whole number of days, got {age!r}")
    wanted = QueueFilter(namespace=namespace or None, fact_type=fact_type or None, subject=subject or None,
                         statuses=[s for s in status or [] if s] or [PROPOSED, CONFLICTED],
                         critical=critical in ("true", "on", "1"), min_age_days=int(age) if age else None, sort=sort,
                         limit=limit)
    result = _console(request).queue(wanted, cursor)
    params = {k: v for k, v in {"namespace": namespace, "fact_type": fact_type, "subject": subject,
                                "critical": "true" if wanted.critical else "", "age": age, "sort": sort,
                                "limit": limit}.items() if v}
    return render(request, "queue_rows.html" if rows_only else "queue.html", page=result, wanted=wanted,
                  params=params, statuses=STATUSES, sorts=list(SORTS))


@router.post("/queue/decide")
def decide(request: Request, who: Reviewer, action: Annotated[str, Form(pattern="^(approve|reject)$")],
           ids: Annotated[list[str] | None, Form(max_length=500)] = None,
           reason: Annotated[str, Form(max_length=2000)] = "",
           back: Annotated[str, Form(max_length=2000)] = "/queue") -> Response:
    if not ids:
        raise ValueError(f"select at least one fact to {action}")
    console = _console(request)
    if action == "approve":
        result = console.approve(ids, who, skip_conflicted=True)
        message = f"approved {len(result['approved'])}" + (
            f"; skipped {len(result['skipped'])} in an open contradiction (resolve them)" if result["skipped"] else "")
    else:
        result = console.reject(ids, reason, who)
        message = f"rejected {len(result['rejected'])}"
    return done(request, message, back if back.startswith("/") and not back.startswith("//") else "/queue")


# -- one fact ---------------------------------------------------------------------------------
@router.get("/facts/{fact_id}")
def fact_page(request: Request, who: Viewer, fact_id: str) -> Response:
    return render(request, "fact.html", **_console(request).fact_detail(fact_id))


@router.post("/facts/{fact_id}/decide")
def fact_decide(request: Request, who: Reviewer, fact_id: str,
                action: Annotated[str, Form(pattern="^(approve|reject)$")],
                reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    console = _console(request)
    if action == "approve":
        console.approve([fact_id], who)
    else:
        console.reject([fact_id], reason, who)
    return done(request, f"{action}d {fact_id[:8]}", f"/facts/{fact_id}")


@router.post("/facts/{fact_id}/correct")
def fact_correct(request: Request, who: Reviewer, fact_id: str, value: Annotated[str, Form(max_length=500)],
                 reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    result = _console(request).correct(fact_id, value, reason, who)
    new_id = result["new_id"]
    return done(request, f"corrected {fact_id[:8]}: {new_id[:8]} = {result['object']} ({result['status']})",
                f"/facts/{new_id}")


# -- conflicts --------------------------------------------------------------------------------
@router.get("/conflicts")
def conflicts(request: Request, who: Viewer) -> Response:
    return render(request, "conflicts.html", conflicts=_console(request).conflicts())


@router.get("/conflicts/{relation_id}")
def conflict_page(request: Request, who: Viewer, relation_id: str) -> Response:
    return render(request, "conflict.html", **_console(request).conflict(relation_id))


@router.post("/conflicts/{relation_id}/decide")
def conflict_decide(request: Request, who: Reviewer, relation_id: str,
                    action: Annotated[str, Form(pattern="^(approve|reject|override|merge|resolve)$")],
                    fact: Annotated[str, Form(max_length=64)],
                    reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """``fact`` is the side the reviewer acted on: kept (resolve, merge, override) or approved/rejected."""
    console = _console(request)
    relation = console.conflict(relation_id)["relation"]
    if fact not in (relation.from_id, relation.to_id):
        raise ValueError(f"fact {fact!r} is not a side of conflict {relation_id}")
    other = relation.other(fact)
    if action == "approve":
        console.approve([fact], who)
    elif action == "reject":
        console.reject([fact], reason, who)
    elif action == "override":
        console.override(fact, other, who)
    elif action == "merge":
        console.merge(fact, [other], who)
    else:
        console.resolve(other, fact, who)
    return done(request, f"{action}: {fact[:8]} ({relation.kind} with {other[:8]})", f"/conflicts/{relation_id}")


# -- time and types -----------------------------------------------------------------------------
@router.get("/timeline")
def timeline_page(request: Request, who: Viewer, subject: Annotated[str, Query(max_length=200)] = "",
                  predicate: Annotated[str, Query(max_length=200)] = "", on: str = "") -> Response:
    data = _console(request).timeline(subject, predicate, on or None) if subject and predicate else None
    return render(request, "timeline.html", subject=subject, predicate=predicate, on=on, data=data)


@router.get("/entity-types")
def entity_types(request: Request, who: Viewer, status: str = "") -> Response:
    console = _console(request)
    targets = [t["type_name"] for t in console.entity_types() if t["status"] != TYPE_REJECTED]
    return render(request, "entity_types.html", types=console.entity_types(status or None), targets=targets,
                  status=status, statuses=TYPE_STATUSES)


@router.post("/entity-types/{type_name}/decide")
def entity_type_decide(request: Request, who: Admin, type_name: str,
                       action: Annotated[str, Form(pattern="^(approve|reject)$")]) -> Response:
    _console(request).decide_entity_type(type_name, action == "approve", who)
    return done(request, f"{action}d entity type {type_name}", "/entity-types")


@router.post("/entity-types")
def entity_type_create(request: Request, who: Admin, type_name: Annotated[str, Form(max_length=128)]) -> Response:
    created = _console(request).create_entity_type(type_name, who)
    return done(request, f"created entity type {created['type_name']}", "/entity-types")


@router.post("/entity-types/{type_name}/merge")
def entity_type_merge(request: Request, who: Admin, type_name: str,
                      into: Annotated[str, Form(max_length=128)]) -> Response:
    result = _console(request).merge_entity_type(type_name, into, who)
    return done(request, f"merged entity type {type_name} into {into} ({result['facts']} facts)", "/entity-types")


# -- administration -----------------------------------------------------------------------------
@router.get("/admin")
def admin(request: Request, who: Admin) -> Response:
    console = _console(request)
    return render(request, "admin.html", packs=console.packs(), apps=console.caller_apps(),
                  indexes=console.indexes(), quarantined=console.quarantined())


@router.post("/admin/packs")
def pack_create(request: Request, who: Admin, pack_id: Annotated[str, Form(max_length=64)],
                name: Annotated[str, Form(max_length=200)] = "") -> Response:
    _console(request).create_pack(pack_id, name, who)
    return done(request, f"created pack {pack_id}", "/admin")


@router.post("/admin/packs/{pack_id}/active")
def pack_active(request: Request, who: Admin, pack_id: str, active: Annotated[bool, Form()]) -> Response:
    _console(request).set_pack_active(pack_id, active, who)
    return done(request, f"{'enabled' if active else 'disabled'} pack {pack_id}", "/admin")


@router.post("/admin/caller-apps")
def app_create(request: Request, who: Admin, name: Annotated[str, Form(max_length=64)]) -> Response:
    _console(request).set_caller_app(name, True, who, create=True)
    return done(request, f"registered caller app {name}", "/admin")


@router.post("/admin/caller-apps/{name}/active")
def app_active(request: Request, who: Admin, name: str, active: Annotated[bool, Form()]) -> Response:
    _console(request).set_caller_app(name, active, who)
    return done(request, f"{'activated' if active else 'deactivated'} caller app {name}", "/admin")


@router.post("/admin/rollback")
def rollback(request: Request, who: Admin, namespace: Annotated[str, Form(max_length=128)]) -> Response:
    result = _console(request).rollback(namespace, who)
    return done(request, f"rolled back {namespace}: @latest {result['from']} → {result['to']}", "/admin")


@router.get("/audit")
def audit(request: Request, who: Viewer) -> Response:
    return render(request, "audit.html", entries=_console(request).audit_log())


@router.get("/insight")
def insight_page(request: Request, who: Viewer, days: Annotated[int, Query(ge=1, le=366)] = 14) -> Response:
    until = dt.datetime.now(dt.UTC)
    since = dt.datetime.combine(until.date() - dt.timedelta(days=days - 1), dt.time(), dt.UTC)
    data = insight(_console(request).registry, since, until)
    return render(request, "insight.html", data=data, days=days)

