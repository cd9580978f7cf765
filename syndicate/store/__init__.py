"""Persistence: schema, migrations and queries (SQLAlchemy Core; SQLite or PostgreSQL)."""

from .database import RedirectUpdate, SourceStatus, Store, UpdateTransaction, source_host

__all__ = ["RedirectUpdate", "SourceStatus", "Store", "UpdateTransaction", "source_host"]
