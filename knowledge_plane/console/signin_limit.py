"""Failed sign-ins, limited per account name and per client address.

A password guesser is slowed down two ways: one account cannot be tried more than a few times per
window from anywhere, and one address cannot try more than a few more names. Only failures count
(the ``limits`` library's moving window, as the query service counts its failed authentications),
and the check comes before the password is verified, so a locked name answers 429 even to the
right password: a guesser learns nothing from which attempt would have succeeded. Names that exist
and names that do not are counted alike. A successful sign-in clears its account's count, never the
address's. The client address is the query service's ``client_address`` (trusted proxies included).
"""

from __future__ import annotations

import math
import threading
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class SignInLimit:
    """At most ``per_account`` failures per name and ``per_address`` per address in ``window_seconds``."""

    def __init__(self, per_account: int, per_address: int, window_seconds: int):
        self.account = RateLimitItemPerSecond(per_account, window_seconds)
        self.address = RateLimitItemPerSecond(per_address, window_seconds)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())  # one process, like the sessions' key
        # Held from the test to the count (around the password check): parallel guesses, which the sync
        # route runs in a thread pool, could otherwise all pass the test before any failure is counted.
        self.lock = threading.Lock()

    def wait(self, name: str, address: str) -> int:
        """0 if this name may be tried from this address now, else the whole seconds until it may."""
        waits = [self._wait(item, key) for item, key in ((self.account, name), (self.address, address))]
        return max(waits)

    def _wait(self, item: RateLimitItemPerSecond, key: str) -> int:
        if self._limiter.test(item, "console-sign-in", key):
            return 0
        reset = self._limiter.get_window_stats(item, "console-sign-in", key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def failed(self, name: str, address: str) -> None:
        self._limiter.hit(self.account, "console-sign-in", name)
        self._limiter.hit(self.address, "console-sign-in", address)

    def succeeded(self, name: str) -> None:
        self._limiter.clear(self.account, "console-sign-in", name)
