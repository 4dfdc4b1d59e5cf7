"""A sliding-window rate limiter: at most ``limit`` events per ``window`` seconds per key."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000):
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return events

    def _wait(self, events: deque[float], now: float) -> int:
        """Whole seconds until the next event is allowed; 0 when it is allowed now."""
        if len(events) < self.limit:
            return 0
        return max(1, math.ceil(events[len(events) - self.limit] + self.window - now))

    def retry_after(self, key: str) -> int:
        """Seconds to wait before ``key`` may act again, without counting anything."""
        with self._lock:
            now = self.clock()
            return self._wait(self._recent(key, now), now)

    def record(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(key, now).append(now)
            self._prune(now)

    def hit(self, key: str) -> int:
        """Count one event for ``key`` if allowed; else return the seconds to wait (nothing counted)."""
        with self._lock:
            now = self.clock()
            events = self._recent(key, now)
            wait = self._wait(events, now)
            if not wait:
                events.append(now)
            self._prune(now)
            return wait

    def _prune(self, now: float) -> None:
        # Bounded memory under many distinct keys (e.g. scanning client addresses).
        if len(self._events) <= self.max_keys:
            return
        for key in [k for k, events in self._events.items() if not events or events[-1] <= now - self.window]:
            del self._events[key]
