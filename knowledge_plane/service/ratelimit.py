"""Rate limits of the query service and the client address and end user they count by.

The counting is the ``limits`` library's moving window. Its storage is ``KNOWLEDGE_RATE_LIMIT_STORAGE``:
``memory://`` (one process) by default, ``redis://host:port/db`` when several uvicorn workers or
replicas serve, so that every worker counts the same budget. Three budgets use it:

* requests per **end user** of an actor (``KNOWLEDGE_RATE_LIMIT_PER_MINUTE``, 10): a chatbot calls
  with one key for all its customers, so the budget is per (actor, end user). The end user is the
  ``X-End-User-ID`` header the calling backend sets, else the client address;
* requests per **actor** overall (``KNOWLEDGE_RATE_LIMIT_PER_ACTOR_PER_MINUTE``), charged only by
  requests the end user's budget let through, so one abusive visitor cannot exhaust it alone;
* failed authentications per client address, charged only by a failure, so a valid key is never
  refused because others guessed keys from the same address (behind a proxy every client may share one).

An end user refused ``KNOWLEDGE_RATE_LIMIT_BLOCK_AFTER`` times within a minute is blocked for
``KNOWLEDGE_RATE_LIMIT_BLOCK_SECONDS``; ``Retry-After`` then gives what is left of the block.

The client address is the TCP peer unless the peer is one of the configured trusted proxies
(``KNOWLEDGE_TRUSTED_PROXIES``); then it is the right-most ``X-Forwarded-For`` entry that is not a
trusted proxy, since everything left of what our own proxy appended is the client's to forge.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Sequence

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
END_USER_HEADER = "X-End-User-ID"
STRIKE_WINDOW_SECONDS = 60


def open_storage(uri: str) -> Storage:
    """The limits storage named by ``uri`` (``memory://``, ``redis://…``); a bad URI fails at start-up."""
    return storage_from_string(uri)


class RateLimit:
    """At most ``per_minute`` events per key in any 60-second window."""

    def __init__(self, name: str, per_minute: int, storage: Storage | None = None):
        self.name = name
        self.item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())

    def hit(self, *key: str) -> int:
        """Count one event for ``key`` if allowed and return 0; else the whole seconds to wait (nothing counted)."""
        if self._limiter.hit(self.item, self.name, *key):
            return 0
        reset = self._limiter.get_window_stats(self.item, self.name, *key).reset_time
        return max(1, math.ceil(reset - time.time()))


class EndUserLimits:
    """The per-end-user and per-actor budgets, and the block after repeated refusals."""

    def __init__(self, storage: Storage, per_user: int, per_actor: int, block_after: int, block_seconds: int):
        self.storage = storage
        self.user = RateLimit("end-user", per_user, storage)
        self.actor = RateLimit("actor", per_actor, storage)
        self.block_after = block_after
        self.block_seconds = block_seconds

    def hit(self, actor: str, end_user: str) -> int:
        """0 when the request may go on (and it is counted); else the seconds before it may be retried."""
        blocked = f"kp-block/{actor}/{end_user}"
        if self.storage.get(blocked) > 0:
            return max(1, math.ceil(self.storage.get_expiry(blocked) - time.time()))
        wait = self.user.hit(actor, end_user)
        if wait:
            strikes = f"kp-strikes/{actor}/{end_user}"
            if self.storage.incr(strikes, STRIKE_WINDOW_SECONDS) >= self.block_after:
                self.storage.incr(blocked, self.block_seconds)
                self.storage.clear(strikes)
                return self.block_seconds
            return wait
        return self.actor.hit(actor)


def end_user(request: Request, proxies: Sequence[Network]) -> str:
    """Who the end user is: the calling backend's ``X-End-User-ID`` (hashed: any length, never stored
    verbatim), else ``ip:`` the client address."""
    named = request.headers.get(END_USER_HEADER)
    if named:
        return "id:" + hashlib.sha256(named.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return "ip:" + client_address(request, proxies)


def end_user_id(request: Request, proxies: Sequence[Network]) -> str:
    """The end user's id as sent (``X-End-User-ID``, else the client address), for the query log's
    keyed hash; the rate limits keep their own key (``end_user``)."""
    return request.headers.get(END_USER_HEADER) or client_address(request, proxies)


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(request: Request, proxies: Sequence[Network]) -> str:
    """The address failed authentications are counted against (see the module docstring)."""
    peer = request.client.host if request.client else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = [part.strip() for value in request.headers.getlist("x-forwarded-for")
                 for part in value.split(",") if part.strip()]
    for address in reversed(forwarded):
        if not _trusted(address, proxies):
            return address
    return forwarded[0] if forwarded else peer  # every hop is one of ours: the first is the client
