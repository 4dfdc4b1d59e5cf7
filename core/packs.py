"""The packs registry: a tenant's document packs, created by uploads or by hand, and disabled by hand.

Kept in the registry database next to versions and aliases; its own table, its own module. The
schema is migrated by core/schema.py (a no-op here when the registry that made ``engine`` did it).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from core.schema import metadata, upgrade
from core.uploads import PACK_ID_RE

packs = sa.Table(
    "packs",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("pack_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
