"""Knowledge Plane: a governed knowledge base for retrieval-augmented generation.

The library is split by plane. ``domain`` holds what both planes share (ids, documents, quarantine
reasons, text analysis); ``storage`` the registry, its schema and migrations, the index store, the
object store and the vector backends; ``serving`` retrieval, access, guards and the query engine;
``facts`` extraction and governance of facts; ``build`` sources, parsing, chunking, embedding
caches, checks and the stages. Layers only import downwards (build → facts → serving → storage →
domain) and none imports Dagster or FastAPI: the applications do — ``service`` (the read-only
query API), ``console`` (the governance console), ``cli`` — and the Dagster code location at the
repository's root (``assets/ resources/ sensors/ jobs/``). The contracts live in ``pyproject.toml``
(import-linter) and run with the tests.
"""
