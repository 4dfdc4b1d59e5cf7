"""Rate limits of the query service and the client address they count failed authentications by.

The counting is the ``limits`` library's moving window over its in-memory storage (one process;
shared storage across workers is a later change). Two budgets use it: requests per API key, and
failed authentications per client address — the second is only ever charged by a failure, so a
valid key is never refused because others guessed keys from the same address (behind a proxy every
client may share one).

The client address is the TCP peer unless the peer is one of the configured trusted proxies
(``KNOWLEDGE_TRUSTED_PROXIES``); then it is the right-most ``X-Forwarded-For`` entry that is not a
trusted proxy, since everything left of what our own proxy appended is the client's to forge.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimit:
    """At most ``per_minute`` events per key in any 60-second window."""

    def __init__(self, name: str, per_minute: int):
        self.name = name
        self.item = RateLimitItemPerMinute(per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> int:
        """Count one event for ``key`` if allowed and return 0; else the whole seconds to wait (nothing counted)."""
        if self._limiter.hit(self.item, self.name, key):
            return 0
        reset = self._limiter.get_window_stats(self.item, self.name, key).reset_time
        return max(1, math.ceil(reset - time.time()))


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
