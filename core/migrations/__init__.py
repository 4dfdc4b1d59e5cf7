"""Alembic migrations of the registry database (see core/schema.py); versions/ holds one file per revision."""
