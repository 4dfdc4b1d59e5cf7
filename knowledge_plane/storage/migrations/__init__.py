"""Alembic migrations of the registry database (see knowledge_plane/storage/schema.py);
versions/ holds one file per revision."""
