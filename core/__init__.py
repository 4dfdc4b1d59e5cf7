"""Plane-agnostic logic of Knowledge Plane: no Dagster, no FastAPI imports live here."""
