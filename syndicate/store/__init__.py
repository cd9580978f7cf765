"""Persistence: schema, migrations and queries (SQLAlchemy Core; SQLite or PostgreSQL)."""

from .database import SourceStatus, Store, UpdateTransaction

__all__ = ["SourceStatus", "Store", "UpdateTransaction"]
