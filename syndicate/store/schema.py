"""Tables and ordered migrations. The schema version is the number of migrations applied.

Migrations run at start (``migrate``), each in its own transaction, and are never edited once
released: a change to the schema is a new function appended to ``MIGRATIONS`` that alters what
the earlier ones made, and the table objects below are updated to describe the result.

Because migration 1 creates the tables from these (current) table objects, a fresh database
already has what later migrations add: every migration after the first must therefore be
idempotent — check with ``sa.inspect(conn)`` before adding a column, index or table. (Version
1 is not released yet; it is frozen with the first release.)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from ..errors import StoreError


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (stored naive UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Fetch state per source, so a restart (or another worker) resumes where things stood.
sources = sa.Table(
    "sources", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),  # as configured when last fetched
    sa.Column("host", sa.String(255), nullable=False),  # of url: politeness is per host
    # A 301/308 target seen on consecutive fetches; after enough of them it becomes
    # permanent_url, which is then fetched instead of url (see ingest/pacing.py).
    sa.Column("redirect_target", sa.Text),
    sa.Column("redirect_count", sa.Integer, nullable=False, default=0),
    sa.Column("permanent_url", sa.Text),
    sa.Column("site_url", sa.Text),  # the feed's own home page link
    sa.Column("site_title", sa.Text),  # the feed's own title
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("next_fetch_at", UTCDateTime),
    sa.Column("error_count", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_fetched_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("warning", sa.Text),  # a recoverable parse problem from the last fetch
    sa.Column("entry_count", sa.Integer, nullable=False, default=0),
    sa.Index("ix_sources_host", "host"),
)

stories = sa.Table(
    "stories", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("guid", sa.String(100), nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("link", sa.Text),
    sa.Column("summary_html", sa.Text, nullable=False),
    sa.Column("content_html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("language", sa.String(35)),
    sa.Column("place", sa.Text),
    sa.Column("authors", sa.JSON, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("enclosures", sa.JSON, nullable=False),
    sa.Column("sources", sa.JSON, nullable=False),  # the ordered source list
    sa.Column("source_count", sa.Integer, nullable=False),
    sa.Index("ix_stories_published", "published"),
)

entries = sa.Table(
    "entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id"), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("guid", sa.Text, nullable=False),
    sa.Column("link", sa.Text),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary_html", sa.Text, nullable=False),
    sa.Column("content_html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("published", UTCDateTime, nullable=False),
    sa.Column("updated", UTCDateTime, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("authors", sa.JSON, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("enclosures", sa.JSON, nullable=False),
    sa.Column("language", sa.String(35)),
    sa.Column("cited", sa.JSON, nullable=False),
    sa.Column("place", sa.Text),
    sa.Column("content_hash", sa.String(64)),
    sa.Column("digest", sa.String(64), nullable=False),  # of every field we republish
    sa.Column("raw_digest", sa.String(64)),  # of the entry as the feed gave it
    sa.Column("lead_signature", sa.LargeBinary),  # MinHash, see ingest/similarity.py
    sa.Column("body_signature", sa.LargeBinary),
    sa.Column("numbers", sa.JSON, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),  # why it joined its story
    sa.Column("score", sa.Float),
    sa.UniqueConstraint("source_id", "guid", name="uq_entries_source_guid"),
    sa.Index("ix_entries_story", "story_id"),
    sa.Index("ix_entries_link", "link"),
    sa.Index("ix_entries_content_hash", "content_hash"),
)

# Each story's outlets by identity (``types.outlet_key``), so feeds can select stories that a
# given outlet carried or cited without parsing the JSON source list in SQL.
story_outlets = sa.Table(
    "story_outlets", metadata,
    sa.Column("story_id", sa.Integer, sa.ForeignKey("stories.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("outlet_key", sa.String(255), nullable=False),
    sa.Column("carried", sa.Boolean, nullable=False),
    sa.Index("ix_story_outlets_key", "outlet_key", "story_id"),
    sa.Index("ix_story_outlets_story", "story_id"),
)

# Until version 5, the near-duplicate index: a row per LSH band key of each entry, led by the
# week the entry is dated in (``band_bucket``). Version 5 replaced it with entry_keys below;
# the table stays defined for migrations 1 to 4.
BUCKET_SECONDS = 7 * 24 * 3600

entry_bands = sa.Table(
    "entry_bands", metadata,
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("band_key", sa.BigInteger, primary_key=True),
    sa.Column("entry_id", sa.Integer, primary_key=True),
    # On SQLite the table is its own (bucket, band_key) index: one B-tree insert per row
    # instead of a table row plus an index entry. Rows are as small as they can be (the
    # entry's exact date and language are read with its signatures), so that more of the
    # index stays in cache: inserts and look-ups land at random places in it. No foreign key
    # either: it cost a look-up of the entry per row, and band rows are only ever written and
    # removed together with their entry. No index by entry either: an entry's rows are found
    # by their full key, recomputed from its stored signatures (``UpdateTransaction``), and a
    # second B-tree insert per row was a fifth of a cold ingest's writing.
    sqlite_with_rowid=False,
)

# The near-duplicate index as stored: one row per entry, its LSH band keys packed together
# (``pack_keys``), clustered by the week the entry is dated in. The index itself is built from
# it in memory, a week at a time (store/bandindex.py): a week of keys is one range read, and a
# new entry one row, where a row per key made a cold ingest write and probe thirty rows per
# entry at random places in one B-tree.
entry_keys = sa.Table(
    "entry_keys", metadata,
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("band_keys", sa.LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)


def pack_keys(keys: Sequence[int]) -> bytes:
    """Band keys (positive 63-bit integers) as stored: little-endian 64-bit integers."""
    return struct.pack(f"<{len(keys)}q", *keys)


def key_row(entry_id: int, published: datetime, keys: Sequence[int]) -> dict[str, Any]:
    """An entry's ``entry_keys`` row: its keys, under the week it is dated in."""
    return {"bucket": band_bucket(published), "entry_id": entry_id,
            "band_keys": pack_keys(keys)}


# Each output feed's archive pages (RFC 5005): which stories a page holds, fixed when the
# page fills, so that a page never changes its stories once published (see publish).
archive_pages = sa.Table(
    "archive_pages", metadata,
    sa.Column("feed_id", sa.String(200), primary_key=True),
    sa.Column("story_id", sa.Integer, primary_key=True),
    sa.Column("page", sa.Integer, nullable=False),
    sa.Index("ix_archive_pages_page", "feed_id", "page"),
)

# Output feeds rendered once per change, served as stored bytes by any web process.
rendered = sa.Table(
    "rendered", metadata,
    sa.Column("feed_id", sa.String(200), primary_key=True),
    sa.Column("format", sa.String(10), primary_key=True),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("gzip_body", sa.LargeBinary, nullable=False),
    sa.Column("etag", sa.String(100), nullable=False),
    sa.Column("last_modified", UTCDateTime, nullable=False),
    # When the bytes changed before that: how often a feed changes sets its Cache-Control.
    sa.Column("previous_modified", UTCDateTime),
)


def band_bucket(when: datetime) -> int:
    return int(when.timestamp()) // BUCKET_SECONDS


def _create_initial_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[meta, sources, stories, entries, story_outlets,
                                      entry_bands, rendered, archive_pages])


def _clustered_bands_and_feed_history(conn: Connection) -> None:
    """Version 2. A database made by the first version 1 had entry_bands with the entry's date
    and language on every row and a rowid, and rendered without previous_modified. Rebuilds
    the band index in its new shape from the signatures stored with each entry, and adds the
    column. (On a database created at version 1 since, both are there: nothing to do.)"""
    inspector = sa.inspect(conn)
    if "previous_modified" not in {c["name"] for c in inspector.get_columns("rendered")}:
        column_type = rendered.c.previous_modified.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE rendered ADD COLUMN previous_modified {column_type}"))
    if "published" not in {c["name"] for c in inspector.get_columns("entry_bands")}:
        return
    # The band keys are a pure function of the stored signatures (ingest.similarity); the
    # store borrows it for this one rebuild rather than leave old entries unfindable.
    from ..ingest.similarity import entry_band_keys

    entry_bands.drop(conn)
    entry_bands.create(conn)
    for rows in _signature_pages(conn):
        bands = []
        for row in rows:
            keys = entry_band_keys(row.lead_signature, row.body_signature)
            bucket = band_bucket(row.published)
            bands += [{"bucket": bucket, "band_key": key, "entry_id": row.id} for key in keys]
        if bands:
            conn.execute(entry_bands.insert(), bands)


def _archive_pages(conn: Connection) -> None:
    """Version 3: the archive pages table (a database created at version 1 since has it)."""
    archive_pages.create(conn, checkfirst=True)


def _fewer_bands(conn: Connection) -> None:
    """Version 4: entry_bands loses its index by entry (rows are deleted by their key), and
    the rows of bands 16 to 31, which ingest.similarity no longer uses. A band key holds its
    band number in bits 56 to 60, and bands 0 to 15 keep their keys, so nothing is
    recomputed."""
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_entry_bands_entry"))
    conn.execute(sa.text("DELETE FROM entry_bands WHERE ((band_key >> 56) & 31) >= 16"))


def _keys_per_entry(conn: Connection) -> None:
    """Version 5: a row of band keys per entry (entry_keys) instead of a row per key
    (entry_bands), computed from the stored signatures like migration 2's."""
    from ..ingest.similarity import entry_band_keys

    entry_keys.create(conn, checkfirst=True)
    for rows in _signature_pages(conn):
        keyed = [(row, entry_band_keys(row.lead_signature, row.body_signature)) for row in rows]
        values = [key_row(row.id, row.published, keys) for row, keys in keyed if keys]
        if values:
            conn.execute(entry_keys.insert(), values)
    entry_bands.drop(conn, checkfirst=True)


def _signature_pages(conn: Connection) -> Iterator[Sequence[Any]]:
    """Every stored entry's id, date and signatures, a page at a time (1 KB an entry)."""
    last_id = 0
    while True:
        rows = conn.execute(
            sa.select(entries.c.id, entries.c.published, entries.c.lead_signature,
                      entries.c.body_signature)
            .where(entries.c.id > last_id).order_by(entries.c.id).limit(5000)).all()
        if not rows:
            return
        yield rows
        last_id = rows[-1].id


MIGRATIONS: list[Callable[[Connection], None]] = [
    _create_initial_tables,
    _clustered_bands_and_feed_history,
    _archive_pages,
    _fewer_bands,
    _keys_per_entry,
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("meta"):
        return 0
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def migrate(engine: sa.Engine) -> int:
    """Apply the migrations this database lacks; return the version it is now at.

    A database already up to date is only read: web processes opening the store while
    another process writes back to back do not queue for its write lock. Otherwise safe when
    several processes start at once: each step re-reads the version inside a transaction
    that holds the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
    transaction-scoped advisory lock), so a step is applied exactly once.
    """
    with engine.connect() as conn:  # the usual case, up to date: no write lock taken
        current = schema_version(conn)
        conn.rollback()
    if current == SCHEMA_VERSION:
        return current
    while True:
        with engine.connect() as conn:
            conn = conn.execution_options(immediate=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": _MIGRATION_LOCK})
                current = schema_version(conn)
                if current > SCHEMA_VERSION:
                    raise StoreError(
                        f"the database is at schema version {current}, newer than this "
                        f"syndicate ({SCHEMA_VERSION}); upgrade syndicate or point it at "
                        "another database")
                if current == SCHEMA_VERSION:
                    return current
                MIGRATIONS[current](conn)
                _set_version(conn, current + 1)


_MIGRATION_LOCK = 0x73796E6D  # "synm"


def _set_version(conn: Connection, version: int) -> None:
    values: dict[str, Any] = {"key": "schema_version", "value": str(version)}
    updated = conn.execute(
        meta.update().where(meta.c.key == "schema_version").values(value=str(version))
    ).rowcount
    if not updated:
        conn.execute(meta.insert().values(**values))
