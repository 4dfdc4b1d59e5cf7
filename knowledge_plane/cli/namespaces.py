"""Which namespaces a command may name, and the precise message when it may not.

An unknown namespace (no corpus folder, not the code or uploads namespace, nothing in the registry)
is a typo or another tenant's name; a known one that was never built only needs ``knowledge build``.
The two get different messages, each saying what to do next.
"""

from __future__ import annotations

from knowledge_plane.settings import Settings
from knowledge_plane.storage.registry import Registry


def namespace_problem(settings: Settings, registry: Registry, namespace: str) -> str | None:
    """Why ``namespace`` has nothing to serve or move, or None when the registry holds versions of it."""
    from knowledge_plane.build.sources import discover_namespaces

    built = registry.namespaces()
    if namespace in built:
        return None
    known = discover_namespaces(settings)
    if namespace not in known:
        return (f"unknown namespace {namespace!r}: no folder for it in the corpus ({settings.paths.corpus_dir}) "
                f"and no version in the registry; known namespaces: {', '.join(sorted(set(known) | set(built)))}")
    return (f"namespace {namespace} has never been built (no index version in the registry); "
            f"build it with `knowledge build --namespace {namespace}`")
