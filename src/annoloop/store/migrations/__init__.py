"""Alembic migrations of the store schema (a package so that wheels include it)."""
