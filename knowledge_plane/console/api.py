"""The REST API, ``/api/v1``: the console's operations for scripts and other apps, same roles as the pages.

Authenticate with an OIDC bearer token (``Authorization: Bearer …``) or a console session cookie
(then unsafe methods need the session's ``X-CSRF-Token``). OpenAPI at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from knowledge_plane.console.insight import insight
from knowledge_plane.console.queue import QueueFilter
from knowledge_plane.console.security import Admin, Reviewer, Viewer
from knowledge_plane.console.service import Console
from knowledge_plane.facts.model import CONFLICTED, PROPOSED

router = APIRouter(prefix="/api/v1")

FactId = Annotated[str, Field(min_length=6, max_length=64)]


def _console(request: Request) -> Console:
    return request.app.state.console


class Ids(BaseModel):
    ids: list[FactId] = Field(min_length=1, max_length=500)


class Approval(Ids):
    skip_conflicted: bool = False


class Rejection(Ids):
    reason: str = Field(min_length=1, max_length=2000)


class Override(BaseModel):
    new_id: FactId
    old_id: FactId


class Merge(BaseModel):
    keep_id: FactId
    duplicate_ids: list[FactId] = Field(min_length=1, max_length=100)


class Resolve(BaseModel):
    fact_id: FactId
    keep_id: FactId


class Correction(BaseModel):
    fact_id: FactId
    value: str = Field(min_length=1, max_length=500, description="the right value as written, e.g. '99,8 %'")
    reason: str = Field(min_length=1, max_length=2000)


class NewEntityType(BaseModel):
    type_name: str = Field(min_length=1, max_length=128)


class EntityTypeMerge(BaseModel):
    into: str = Field(min_length=1, max_length=128)


class NewPack(BaseModel):
    pack_id: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=200)


class NewCallerApp(BaseModel):
    name: str = Field(max_length=64)


class Rollback(BaseModel):
    namespace: str = Field(max_length=128)


def _relation(relation: Any, *facts: Any) -> dict[str, Any]:
    return {**relation.to_dict(), "facts": [f.to_dict() for f in facts if f is not None]}


# -- facts --------------------------------------------------------------------------------------
@router.get("/facts", tags=["facts"])
def list_facts(request: Request, who: Viewer, namespace: str | None = None, fact_type: str | None = None,
               subject: str | None = None, status: Annotated[list[str] | None, Query()] = None,
               critical: bool = False, age: Annotated[int | None, Query(ge=0)] = None, sort: str = "oldest",
               cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The review queue: proposed and conflicted facts by default; page on with ``next_cursor``."""
    wanted = QueueFilter(namespace, fact_type, subject, status or [PROPOSED, CONFLICTED], critical, age, sort, limit)
    page = _console(request).queue(wanted, cursor)
    return {"facts": [f.to_dict() for f in page.facts], "total": page.total, "next_cursor": page.next_cursor}


@router.get("/facts/{fact_id}", tags=["facts"])
def get_fact(request: Request, who: Viewer, fact_id: str) -> dict[str, Any]:
    """A fact with its source passage, relations (with the other fact) and audit trail."""
    detail = _console(request).fact_detail(fact_id)
    passage = detail["passage"]
    return {**detail["fact"].to_dict(), "passage": passage.__dict__ if passage else None,
            "relations": [_relation(r, other) for r, other in detail["relations"]],
            "audit": [e.to_dict() for e in detail["audit"]]}


@router.post("/facts/approve", tags=["facts"])
def approve(request: Request, who: Reviewer, body: Approval) -> dict[str, list[str]]:
    """Approve facts; one in an open contradiction is refused (409) or, with skip_conflicted, skipped."""
    return _console(request).approve(body.ids, who, body.skip_conflicted)


@router.post("/facts/reject", tags=["facts"])
def reject(request: Request, who: Reviewer, body: Rejection) -> dict[str, list[str]]:
    """Reject facts with a reason; their open relations are closed."""
    return _console(request).reject(body.ids, body.reason, who)


@router.post("/facts/override", tags=["facts"])
def override(request: Request, who: Reviewer, body: Override) -> dict[str, Any]:
    """The newer fact holds from its valid_from; the older one's validity is closed the day before."""
    return _console(request).override(body.new_id, body.old_id, who)


@router.post("/facts/merge", tags=["facts"])
def merge(request: Request, who: Reviewer, body: Merge) -> dict[str, Any]:
    """Fold duplicates (same value) into one fact."""
    return _console(request).merge(body.keep_id, body.duplicate_ids, who)


@router.post("/facts/resolve", tags=["facts"])
def resolve(request: Request, who: Reviewer, body: Resolve) -> dict[str, Any]:
    """Settle the open conflicts between fact_id and keep_id (or all of fact_id's when equal) by keeping keep_id."""
    return _console(request).resolve(body.fact_id, body.keep_id, who)


@router.post("/facts/correct", tags=["facts"])
def correct(request: Request, who: Reviewer, body: Correction) -> dict[str, Any]:
    """Correct a fact's value: a new fact (approved unless it contradicts another) supersedes the old,
    which is rejected as ``corrected by <new id>``; both audited with the reviewer's identity."""
    return _console(request).correct(body.fact_id, body.value, body.reason, who)


@router.get("/conflicts", tags=["facts"])
def conflicts(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Open relations (CONTRADICTS, OVERRIDES, DUPLICATES, OUTDATED), most severe first, with both facts."""
    return [_relation(r, a, b) for r, a, b in _console(request).conflicts()]


@router.get("/conflicts/{relation_id}", tags=["facts"])
def conflict(request: Request, who: Viewer, relation_id: str) -> dict[str, Any]:
    """One relation with both facts, their source passages and the audit entries of both."""
    data = _console(request).conflict(relation_id)
    return {**data["relation"].to_dict(),
            "sides": [{"fact": s["fact"].to_dict(), "passage": s["passage"].__dict__ if s["passage"] else None}
                      for s in data["sides"]],
            "audit": [e.to_dict() for e in data["audit"]]}


@router.get("/timeline", tags=["facts"])
def timeline(request: Request, who: Viewer, subject: Annotated[str, Query(max_length=200)],
             predicate: Annotated[str, Query(max_length=200)], on: str | None = None) -> dict[str, Any]:
    """A subject/predicate's facts in validity order, and with ``on`` (YYYY-MM-DD) what held that day."""
    data = _console(request).timeline(subject, predicate, on)
    return {"entries": data["entries"], "on": on,
            "held": [f.to_dict() for f in data["held"]] if data["held"] is not None else None}


@router.get("/entity-types", tags=["facts"])
def entity_types(request: Request, who: Viewer, status: str | None = None) -> list[dict[str, Any]]:
    """Entity types with their fact counts; ``status=pending`` for those awaiting a decision."""
    return _console(request).entity_types(status)


@router.post("/entity-types", tags=["facts"], status_code=201)
def create_entity_type(request: Request, who: Admin, body: NewEntityType) -> dict[str, Any]:
    """Register an entity type by hand, approved (admin)."""
    return _console(request).create_entity_type(body.type_name, who)


# declared before the approve/reject route, whose {decision} would otherwise catch "merge"
@router.post("/entity-types/{type_name}/merge", tags=["facts"])
def merge_entity_type(request: Request, who: Admin, type_name: str, body: EntityTypeMerge) -> dict[str, Any]:
    """Merge an entity type into another: its facts take the other type, it leaves the registry (admin)."""
    return _console(request).merge_entity_type(type_name, body.into, who)


@router.post("/entity-types/{type_name}/{decision}", tags=["facts"])
def decide_entity_type(request: Request, who: Admin, type_name: str,
                       decision: Literal["approve", "reject"]) -> dict[str, Any]:
    """Approve or reject an entity type (admin)."""
    return _console(request).decide_entity_type(type_name, decision == "approve", who)


# -- administration -----------------------------------------------------------------------------
@router.get("/packs", tags=["admin"])
def packs(request: Request, who: Admin) -> list[dict[str, Any]]:
    return _console(request).packs()


@router.post("/packs", tags=["admin"], status_code=201)
def create_pack(request: Request, who: Admin, body: NewPack) -> dict[str, str]:
    _console(request).create_pack(body.pack_id, body.name, who)
    return {"pack_id": body.pack_id}


@router.post("/packs/{pack_id}/{state}", tags=["admin"])
def pack_state(request: Request, who: Admin, pack_id: str,
               state: Literal["enable", "disable"]) -> dict[str, Any]:
    """Disable a pack (its uploads leave the next build) or enable it again."""
    _console(request).set_pack_active(pack_id, state == "enable", who)
    return {"pack_id": pack_id, "active": state == "enable"}


@router.get("/caller-apps", tags=["admin"])
def caller_apps(request: Request, who: Admin) -> list[dict[str, Any]]:
    return _console(request).caller_apps()


@router.post("/caller-apps", tags=["admin"], status_code=201)
def create_caller_app(request: Request, who: Admin, body: NewCallerApp) -> dict[str, str]:
    """Register an active caller app (name ``^[a-z0-9_-]{2,64}$``)."""
    _console(request).set_caller_app(body.name, True, who, create=True)
    return {"name": body.name}


@router.post("/caller-apps/{name}/{state}", tags=["admin"])
def caller_app_state(request: Request, who: Admin, name: str,
                     state: Literal["activate", "deactivate"]) -> dict[str, Any]:
    """With ENFORCE_CALLER_APP_REGISTRY=true, the query service answers 400 to an inactive caller app."""
    _console(request).set_caller_app(name, state == "activate", who)
    return {"name": name, "active": state == "activate"}


@router.get("/indexes", tags=["admin"])
def indexes(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Per namespace: @latest, @rollback and the kept versions."""
    return _console(request).indexes()


@router.post("/indexes/rollback", tags=["admin"])
def rollback(request: Request, who: Admin, body: Rollback) -> dict[str, Any]:
    """``knowledge rollback``: @latest := @rollback (audited with the admin's identity)."""
    return _console(request).rollback(body.namespace, who)


@router.get("/quarantine", tags=["admin"])
def quarantine(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """Documents the last parse of each namespace held back, with reason codes."""
    return _console(request).quarantined()


@router.get("/audit", tags=["admin"])
def audit(request: Request, who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """The tenant's audit log, newest first."""
    return [e.to_dict() for e in _console(request).audit_log(limit)]


@router.get("/insight", tags=["insight"])
def query_insight(request: Request, who: Viewer, days: Annotated[int, Query(ge=1, le=366)] = 14) -> dict[str, Any]:
    """Answer and clarification rates, refusals, p50/p95 latency overall, per namespace and per caller app."""
    until = dt.datetime.now(dt.UTC)
    since = dt.datetime.combine(until.date() - dt.timedelta(days=days - 1), dt.time(), dt.UTC)
    data = insight(_console(request).registry, since, until)
    data.pop("chart")
    return {**data, "since": since.isoformat(), "until": until.isoformat()}
