"""The packs registry: a tenant's document packs, created by uploads or by hand, and disabled by hand.

Each pack also has grants: the namespaces its uploads may publish into and the strongest truth
level they may claim there. Every pack may publish into ``knowledge:uploads`` at L4; anything more
is an operator's decision (``knowledge packs allow``), never the uploader's.

Kept in the registry database next to versions and aliases; its own tables, its own module. The
schema is migrated by knowledge_plane/storage/schema.py (a no-op here when the registry that made ``engine`` did it).
"""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from knowledge_plane.domain.documents import TRUTH_LEVELS
from knowledge_plane.domain.ids import NAMESPACE_RE
from knowledge_plane.storage.schema import metadata, upgrade

DEFAULT_UPLOAD_NAMESPACE = "knowledge:uploads"
DEFAULT_UPLOAD_TRUTH_LEVEL = "L4"
DEFAULT_GRANTS = {DEFAULT_UPLOAD_NAMESPACE: DEFAULT_UPLOAD_TRUTH_LEVEL}  # what every pack may publish
PACK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")

packs = sa.Table(
    "packs",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("pack_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

pack_grants = sa.Table(
    "pack_grants",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("pack_id", sa.String(64), primary_key=True),
    sa.Column("namespace", sa.String(128), primary_key=True),
    sa.Column("max_truth_level", sa.String(2), nullable=False),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
)


class Packs:
    def __init__(self, engine: sa.Engine, tenant_id: str):
        self.engine = engine
        self.tenant_id = tenant_id
        upgrade(engine)

    def create(self, pack_id: str, name: str | None = None, active: bool = True) -> None:
        if not PACK_ID_RE.match(pack_id):
            raise ValueError(f"malformed pack id {pack_id!r}: expected lowercase letters, digits, '_' or '-' (2-64)")
        with self.engine.begin() as db:
            exists = db.execute(
                sa.select(packs.c.pack_id).where(packs.c.tenant_id == self.tenant_id, packs.c.pack_id == pack_id)
            ).first()
            if exists:
                raise ValueError(f"pack {pack_id!r} already exists")
            db.execute(
                packs.insert().values(
                    tenant_id=self.tenant_id,
                    pack_id=pack_id,
                    name=name or pack_id,
                    active=active,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )

    def ensure(self, pack_ids: set[str]) -> None:
        """Register packs seen in uploads; an existing pack keeps its state (a disabled pack stays so)."""
        known = {p["pack_id"] for p in self.list()}
        for pack_id in sorted(pack_ids - known):
            self.create(pack_id)

    def set_active(self, pack_id: str, active: bool) -> None:
        with self.engine.begin() as db:
            updated = db.execute(
                packs.update()
                .where(packs.c.tenant_id == self.tenant_id, packs.c.pack_id == pack_id)
                .values(active=active)
            ).rowcount
        if not updated:
            raise LookupError(f"unknown pack {pack_id!r}")

    def list(self) -> list[dict]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(packs).where(packs.c.tenant_id == self.tenant_id).order_by(packs.c.pack_id))
            return [
                {"pack_id": r.pack_id, "name": r.name, "active": r.active, "created_at": r.created_at} for r in rows
            ]

    def disabled(self) -> set[str]:
        return {p["pack_id"] for p in self.list() if not p["active"]}

    def allow(self, pack_id: str, namespace: str, max_truth_level: str = "L4") -> None:
        """Let the pack's uploads publish into ``namespace``, claiming ``max_truth_level`` at the strongest."""
        if not (NAMESPACE_RE.match(namespace) and namespace.startswith("knowledge:")):
            raise ValueError(f"namespace {namespace!r} is not a knowledge:<name> namespace")
        if max_truth_level not in TRUTH_LEVELS:
            raise ValueError(f"truth level must be one of {', '.join(TRUTH_LEVELS)}, got {max_truth_level!r}")
        key = (pack_grants.c.tenant_id == self.tenant_id, pack_grants.c.pack_id == pack_id,
               pack_grants.c.namespace == namespace)
        with self.engine.begin() as db:
            if not db.execute(
                sa.select(packs.c.pack_id).where(packs.c.tenant_id == self.tenant_id, packs.c.pack_id == pack_id)
            ).first():
                raise LookupError(f"unknown pack {pack_id!r}")
            db.execute(pack_grants.delete().where(*key))
            db.execute(
                pack_grants.insert().values(
                    tenant_id=self.tenant_id,
                    pack_id=pack_id,
                    namespace=namespace,
                    max_truth_level=max_truth_level,
                    granted_at=dt.datetime.now(dt.UTC),
                )
            )

    def revoke(self, pack_id: str, namespace: str) -> None:
        """Withdraw a grant; the default one (``knowledge:uploads`` at L4) comes back if it was raised."""
        with self.engine.begin() as db:
            removed = db.execute(
                pack_grants.delete().where(
                    pack_grants.c.tenant_id == self.tenant_id,
                    pack_grants.c.pack_id == pack_id,
                    pack_grants.c.namespace == namespace,
                )
            ).rowcount
        if not removed:
            raise LookupError(f"pack {pack_id!r} has no grant on {namespace!r}")

    def grants(self) -> dict[str, dict[str, str]]:
        """pack_id → {namespace: strongest truth level} for every pack with a grant of its own."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(pack_grants).where(pack_grants.c.tenant_id == self.tenant_id))
            found: dict[str, dict[str, str]] = {}
            for r in rows:
                found.setdefault(r.pack_id, {})[r.namespace] = r.max_truth_level
        return found

    def allowed(self, pack_id: str) -> dict[str, str]:
        """What the pack may publish: the default grants overlaid with its own."""
        return {**DEFAULT_GRANTS, **self.grants().get(pack_id, {})}
