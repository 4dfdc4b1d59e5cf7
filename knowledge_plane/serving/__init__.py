"""The read path: embedding, retrieval, lexical scoring, access, guards, snapshots and the query engine."""
