"""Writes the query log off the request path: requests enqueue, one thread appends in batches."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from knowledge_plane.storage.registry import Registry, append_query_log

log = logging.getLogger("knowledge.query")


class QueryLogWriter:
    def __init__(self, registry: Registry, batch: int = 200):
        self.registry = registry
        self.batch = batch
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="query-log-writer", daemon=True)
        self._thread.start()

    def write(self, entry: dict[str, Any]) -> None:
        self._queue.put(entry)

    def flush(self) -> None:
        """Block until every entry written so far is in the database."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            items = [first]
            while len(items) < self.batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            entries = [i for i in items if i is not None]
            try:
                append_query_log(self.registry, entries)
            except Exception:  # the log must not take the service down; say loudly what was lost
                log.exception("could not append %d query-log entries", len(entries))
            finally:
                for _ in items:
                    self._queue.task_done()
            if None in items:
                return
