"""Persistence: schema, migrations and queries (SQLAlchemy Core; SQLite or PostgreSQL)."""

from .database import (
    SCHEDULER_HEARTBEAT,
    NotModifiedUpdate,
    RedirectUpdate,
    SourceStatus,
    Store,
    UpdateTransaction,
    source_host,
)

__all__ = ["SCHEDULER_HEARTBEAT", "NotModifiedUpdate", "RedirectUpdate", "SourceStatus", "Store",
           "UpdateTransaction", "source_host"]
