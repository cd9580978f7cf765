"""Shared fixtures: the loopback HTTP server, and store URLs for SQLite and PostgreSQL."""

from tests.loopback import loopback  # noqa: F401  (a fixture, re-exported for every test)
