"""The periodic drift check: what each @latest version publishes about facts against the fact store."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from knowledge_plane.facts.drift import drift_report
from knowledge_plane.facts.store import FactStore, open_fact_store
from knowledge_plane.settings import Settings
from knowledge_plane.storage.index_store import read_facts, read_version
from knowledge_plane.storage.registry import LATEST, Registry


def drift_check(settings: Settings, remove_orphans: bool = False,
                store: FactStore | None = None) -> list[dict[str, Any]]:
    """One report per aliased namespace: dangling, orphan and unpublished facts, and drift %. ``store``:
    a fact store the caller holds open (the metrics exporter's), else one is opened for the check."""
    reports = []
    with ExitStack() as stack:
        registry = Registry(settings.registry.url.get_secret_value(), settings.tenant_id)
        stack.callback(registry.engine.dispose)
        store = store or stack.enter_context(open_fact_store(settings))
        for namespace, aliases in sorted(registry.aliases().items()):
            record = registry.version(namespace, aliases[LATEST])
            path = Path(record.path)
            rows = read_version(path).payloads + read_facts(path)
            report = drift_report(store, settings.tenant_id, rows, remove_orphans, namespace=namespace)
            reports.append({"namespace": namespace, "version": aliases[LATEST], **report})
    return reports
