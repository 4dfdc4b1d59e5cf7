"""Facts: extraction, normalisation, conflicts, a bi-temporal timeline and review, on SQL and Neo4j.

Pure logic (model, normalisation, extraction, conflict rules, matching) sits in small modules that
take plain values; the stores implement one contract (``store.FactStore``) so review, gate,
publication and drift work the same on SQLite, Postgres and a Bolt server.
"""
