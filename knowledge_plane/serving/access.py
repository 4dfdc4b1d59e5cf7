"""Who may read what: the actors of the query service, their grants and their API keys.

An actor is granted namespaces, and within them the packs and the source applications whose
passages it may read; both are closed by default (an actor granted no pack reads no passage that
belongs to a pack, only those outside every pack, like the Git corpus; one granted no application
reads nothing). ``EVERY`` grants them all. Grants are fixed in this module on purpose: neither
the environment nor a request can widen them. The environment only says which key belongs to
which actor (``KNOWLEDGE_API_KEYS``), and keys are compared in constant time so a caller cannot
learn a key one byte at a time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

API_KEYS_ENV = "KNOWLEDGE_API_KEYS"
MIN_KEY_LENGTH = 16
_SHA256_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
EVERY: frozenset[str] = frozenset({"*"})  # a pack or application grant holding every one


@dataclass(frozen=True)
class Actor:
    """A caller of the query service and what it is granted."""

    name: str
    namespaces: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()  # every namespace starting with one of these is granted
    verified_sources_only: bool = False  # only L1/L2 passages are returned; none: refused
    packs: frozenset[str] = frozenset()  # packs whose passages it may read (EVERY: all)
    source_apps: frozenset[str] = frozenset()  # applications whose passages it may read (EVERY: all)

    def may_read(self, namespace: str) -> bool:
        return namespace in self.namespaces or namespace.startswith(self.prefixes)

    def readable_packs(self) -> frozenset[str] | None:
        """The packs granted, or None for every pack."""
        return None if "*" in self.packs else self.packs

    def readable_apps(self) -> frozenset[str] | None:
        """The source applications granted, or None for every application."""
        return None if "*" in self.source_apps else self.source_apps

    def granted(self, available: Iterable[str]) -> list[str]:
        """The published namespaces this actor may read, sorted."""
        return sorted(ns for ns in set(available) if self.may_read(ns))


ACTORS: dict[str, Actor] = {
    actor.name: actor
    for actor in (
        Actor(
            "chatbot_prod",
            namespaces=frozenset({"knowledge:faq", "knowledge:diagnostic", "knowledge:vehicle", "knowledge:policies",
                                  "knowledge:guides"}),
            verified_sources_only=True, source_apps=frozenset({"git"}),
        ),
        Actor("support_prod", prefixes=("knowledge:",), packs=EVERY, source_apps=EVERY),
        Actor("kpi_prod", namespaces=frozenset({"knowledge:runbooks"}), source_apps=frozenset({"git"})),
        Actor("agents_dev", prefixes=("knowledge:", "internal:"), packs=EVERY, source_apps=EVERY),
        # Aurora Nexus service users (bearer JWTs map onto these, see knowledge_plane.service.bearer):
        # the platform's own UI reads every pack uploaded by any application; the notes app only
        # its own pack and its own uploads.
        Actor("aurora_nexus_ui", namespaces=frozenset({"knowledge:uploads"}), packs=EVERY, source_apps=EVERY),
        Actor("aurora_notes", namespaces=frozenset({"knowledge:uploads"}), packs=frozenset({"notes"}),
              source_apps=frozenset({"notes"})),
    )
}


def actor(name: str) -> Actor:
    try:
        return ACTORS[name]
    except KeyError:
        raise KeyError(f"unknown actor {name!r}: known actors are {', '.join(sorted(ACTORS))}") from None


@dataclass(frozen=True)
class NamespaceResolution:
    """The namespaces a request searches, and those it asked for but may not read."""

    namespaces: list[str]
    ignored: list[str] = field(default_factory=list)


def resolve_namespaces(who: Actor, requested: Iterable[str] | None, available: Iterable[str]) -> NamespaceResolution:
    """Narrow the actor's grant to the requested namespaces; never widen it.

    A requested namespace outside the grant is dropped and reported in ``ignored`` (the caller
    logs it as an injection attempt). If nothing requested is left, the request searches its
    whole grant, exactly as if it had asked for nothing: the answer must not differ between a
    namespace that exists and one that does not.
    """
    granted = who.granted(available)
    wanted = list(dict.fromkeys(requested or []))
    if not wanted:
        return NamespaceResolution(granted)
    allowed = [ns for ns in wanted if who.may_read(ns)]
    ignored = [ns for ns in wanted if not who.may_read(ns)]
    if not allowed:
        return NamespaceResolution(granted, ignored)
    return NamespaceResolution(sorted(ns for ns in allowed if ns in set(granted)), ignored)


@dataclass(frozen=True)
class _KeyEntry:
    actor: str
    digest: bytes  # sha256 of the key


class ApiKeyring:
    """API keys → actors, from ``KNOWLEDGE_API_KEYS`` (``actor=key`` or ``actor=sha256:<hex>``, comma-separated)."""

    def __init__(self, entries: list[_KeyEntry]):
        self._entries = entries

    @classmethod
    def parse(cls, value: str | None) -> ApiKeyring:
        """Parse the variable; an unknown actor or a malformed entry is an error at start-up."""
        entries: list[_KeyEntry] = []
        for position, raw in enumerate((value or "").split(","), start=1):
            item = raw.strip()
            if not item:
                continue
            name, sep, secret = item.partition("=")
            name, secret = name.strip(), secret.strip()
            if not sep or not name or not secret:
                raise ValueError(f"{API_KEYS_ENV} entry {position} is not 'actor=key' or 'actor=sha256:<hex>'")
            if name not in ACTORS:
                raise ValueError(f"{API_KEYS_ENV} entry {position} names unknown actor {name!r}; "
                                 f"known actors are {', '.join(sorted(ACTORS))}")
            hashed = _SHA256_RE.match(secret)
            if hashed:
                digest = bytes.fromhex(hashed.group(1))
            elif secret.lower().startswith("sha256:"):
                raise ValueError(f"{API_KEYS_ENV} entry {position} ({name}): sha256: must be followed by 64 hex digits")
            elif len(secret) < MIN_KEY_LENGTH:
                raise ValueError(f"{API_KEYS_ENV} entry {position} ({name}): a key must be at least "
                                 f"{MIN_KEY_LENGTH} characters long")
            else:
                digest = hashlib.sha256(secret.encode("utf-8")).digest()
            entries.append(_KeyEntry(name, digest))
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, key: str | None) -> Actor | None:
        """The actor owning ``key``, or None. Every entry is compared, match or not."""
        if not key:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found: str | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest) and found is None:
                found = entry.actor
        return ACTORS[found] if found else None

