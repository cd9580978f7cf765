"""The store: SQLAlchemy Core over SQLite (embedded default, WAL) or PostgreSQL.

The only module that speaks SQL. ``Store`` reads and records fetch state and rendered feeds;
``UpdateTransaction`` is one source update, all-or-nothing: the lookups dedupe needs, the
entry and story writes, and the source's new fetch state commit together, so a killed process
or a full disk leaves the store as it was before that source's update.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import StoreError
from ..languages import primary_language
from ..types import (
    Enclosure,
    Entry,
    ExistingEntry,
    FetchState,
    RenderedFeed,
    SimilarCandidate,
    SourceConfig,
    SourceInfo,
    SourceRef,
    StoredMember,
    Story,
    StoryMember,
    StorySource,
    StoryUpdate,
    outlet_key,
)
from . import schema
from .bandindex import BandIndex
from .schema import (
    archive_pages,
    band_bucket,
    entries,
    entry_keys,
    key_row,
    meta,
    rendered,
    sources,
    stories,
    story_outlets,
)


@dataclass(frozen=True)
class NewEntry:
    """An entry to insert under its story, with what placing it decided."""

    entry: Entry
    story_id: int
    digest: str
    reason: str
    score: float | None
    raw_digest: str | None
    band_keys: tuple[int, ...]


class Neighbour(NamedTuple):
    """An entry found under an LSH band key, with what verification needs: one per entry,
    listed under each of its keys that matched. (A tuple: a frozen dataclass is several
    times slower to build.)"""

    published_ts: int  # Unix seconds
    language: str
    candidate: SimilarCandidate


BandProbe = tuple[datetime, datetime, Sequence[int]]  # (since, until, band keys) of one entry


@dataclass(frozen=True)
class RedirectUpdate:
    """The permanent-redirect bookkeeping after a fetch (see ingest/pacing.follow_redirect)."""

    target: str | None
    count: int
    permanent_url: str | None  # set when the move is confirmed by this fetch


@dataclass(frozen=True)
class NotModifiedUpdate:
    """A fetch that found its feed unchanged and confirmed no permanent redirect: the fetch
    state to record. A warm re-poll is mostly these, written many to a statement."""

    source_id: str
    etag: str | None
    last_modified: str | None
    status: int  # 304, or 200 when the body hashed as before
    next_fetch_at: datetime
    redirect: RedirectUpdate
    fetched_at: datetime


def _redirect_values(redirect: RedirectUpdate | None) -> dict[str, Any]:
    if redirect is None:
        return {}
    values: dict[str, Any] = {"redirect_target": redirect.target,
                              "redirect_count": redirect.count}
    if redirect.permanent_url:
        values["permanent_url"] = redirect.permanent_url
    return values


def source_host(url: str) -> str:
    """The server a source lives on, for politeness: host, and port when one is given
    (two ports are two servers); lower case; "" for local files."""
    if not url.startswith(("http://", "https://")):
        return ""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    return (f"{host}:{port}" if port else host)[:255]


_UPDATE_LOCK = 0x73796E64  # "synd": the advisory lock key of source updates on PostgreSQL


@dataclass(frozen=True)
class SourceStatus:
    """One source's health, for operators."""

    id: str
    url: str
    permanent_url: str | None
    site_title: str | None
    next_fetch_at: datetime | None
    error_count: int
    last_error: str | None
    last_status: int | None
    last_fetched_at: datetime | None
    last_success_at: datetime | None
    warning: str | None
    entry_count: int


# The meta row where ``syndicate run``'s scheduler writes how it is doing (JSON: "at", the
# time of its last tick, and "problem" or "stopped"), for the web processes' /healthz.
SCHEDULER_HEARTBEAT = "scheduler"

# The meta row counting the transactions that added or changed stories: a web process
# re-renders a cached archive page (which is rendered on request) only when it has moved.
STORIES_VERSION = "stories_version"

ARCHIVE_PAGES_PER_INSERT = 100  # of a feed's archive pages, written in one statement

WRITER_CACHE_KIB = 16 * 1024
# SQLite copies the WAL back into the database (and syncs it to disk) once the WAL holds this
# many pages. At the default (1,000 pages, 4 MB) a cold ingest checkpointed after nearly every
# source update, and those syncs were its largest single cost; 16,384 pages (64 MB) makes them
# rare. journal_size_limit truncates the WAL back to that size after a checkpoint (a large
# group may have grown it past).
CHECKPOINT_PAGES = 16_384


def create_engine(url: str, *, writer: bool = False) -> sa.Engine:
    """An engine for reads, or (``writer``) the one-connection engine every write goes
    through. Writes are serialized anyway (SQLite's write lock, PostgreSQL's advisory lock),
    so one connection loses nothing, and that one connection can keep a large, warm page
    cache (the near-duplicate index's hot weeks) without every reader paying for one."""
    pool: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 600} \
        if writer else {}
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **pool)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        if writer:
            sa.event.listen(engine, "connect", _writer_cache)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **pool)


def _writer_cache(dbapi_connection: Any, _record: object) -> None:
    # 16 MiB for the one writing connection; readers keep SQLite's 2 MiB default. A large
    # cache on every pooled connection took a 1,000-feed ingest to 429 MB peak. (It was 32
    # MiB for the band table's pages; with the band index in memory, 16 made no difference
    # to a cold ingest's time and saved 19 MB.)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={CHECKPOINT_PAGES * 4096}")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # WAL lets the web server read while a fetch writes; NORMAL sync is durable under WAL
    # except for the last transactions on power loss, never corrupting.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # Let SQLAlchemy, not the sqlite3 module, say when transactions begin (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    # A source update reads (dedupe look-ups) and then writes. Under WAL a deferred
    # transaction that another writer overtook fails at its first write with SQLITE_BUSY and
    # no wait; BEGIN IMMEDIATE takes the write lock up front, so concurrent updates queue
    # (busy_timeout) instead of failing. Readers keep plain deferred transactions.
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _Turns:
    """First come, first served. The write connection's pool is not fair: the writer thread
    gives the connection back and takes it again within microseconds, group after group, and
    a publish or the scheduler's heartbeat waiting for it could starve through a whole cold
    ingest. With turns, each waits for at most the writes that asked before it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next = 0  # the ticket the next writer takes
        self._serving = 0  # the ticket whose turn it is
        self._abandoned: set[int] = set()  # tickets of waiters that gave up (interrupted)

    def __enter__(self) -> None:
        with self._changed:
            ticket = self._next
            self._next += 1
            try:
                while ticket != self._serving:
                    self._changed.wait()
            except BaseException:  # e.g. Ctrl-C while waiting: never hold up those behind
                self._abandoned.add(ticket)
                self._pass_on()
                raise

    def __exit__(self, *_: object) -> None:
        with self._changed:
            self._serving += 1
            self._pass_on()

    def _pass_on(self) -> None:
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._changed.notify_all()


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self._turns = _Turns()
        self._bands = BandIndex()  # the near-duplicate index of this process's writes
        try:
            self.engine = create_engine(url)
            self.write_engine = create_engine(url, writer=True)
        except (sa.exc.SQLAlchemyError, ImportError, ValueError) as e:
            raise StoreError(f"cannot use the database {_safe_url(url)}: {e}") from e
        try:
            schema.migrate(self.write_engine)
        except sa.exc.SQLAlchemyError as e:
            self.close()
            raise StoreError(f"cannot open the database {_safe_url(url)}: {e}") from e
        except StoreError:
            self.close()
            raise

    def close(self) -> None:
        self.engine.dispose()
        self.write_engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A transaction that writes: it takes SQLite's write lock up front (see _sqlite_begin),
        so a read-then-write never fails when another writer committed in between. Writers of
        this process take turns in the order they asked (``_Turns``)."""
        with self._turns, self.write_engine.connect() as conn:
            conn = conn.execution_options(immediate=True)
            with conn.begin():
                yield conn

    # --- sources and fetch state ---------------------------------------------------------------

    def sync_sources(self, configs: Sequence[SourceConfig], now: datetime) -> None:
        """Make the stored sources match the config: new ones are due now; a changed URL
        forgets the old URL's validators and redirect (the config is the source of truth)."""
        with self._writing() as conn:
            rows = conn.execute(sa.select(sources.c.id, sources.c.url))
            known = {row.id: row.url for row in rows}
            for config in configs:
                if config.id not in known:
                    conn.execute(sources.insert().values(
                        id=config.id, url=config.url, host=source_host(config.url),
                        next_fetch_at=now, error_count=0, entry_count=0, redirect_count=0))
                elif known[config.id] != config.url:
                    conn.execute(sources.update().where(sources.c.id == config.id).values(
                        url=config.url, host=source_host(config.url), permanent_url=None,
                        redirect_target=None, redirect_count=0, etag=None, last_modified=None,
                        content_hash=None, next_fetch_at=now, error_count=0, last_error=None))

    def fetch_state(self, source_id: str) -> FetchState:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.id == source_id)).first()
        return FetchState(source_id=source_id) if row is None else _fetch_state(row)

    def due_sources(self, source_ids: Iterable[str], now: datetime) -> list[str]:
        ids = list(source_ids)
        query = (sa.select(sources.c.id)
                 .where(sources.c.id.in_(ids))
                 .where(sa.or_(sources.c.next_fetch_at.is_(None), sources.c.next_fetch_at <= now))
                 .order_by(sources.c.next_fetch_at))
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def record_not_modified(self, source_id: str, *, etag: str | None,
                            last_modified: str | None, status: int, next_fetch_at: datetime,
                            now: datetime, redirect: RedirectUpdate | None = None) -> None:
        with self.transaction(now) as tx:
            tx.record_not_modified(source_id, etag=etag, last_modified=last_modified,
                                   status=status, next_fetch_at=next_fetch_at, redirect=redirect)

    def record_failure(self, source_id: str, *, message: str, status: int | None,
                       next_fetch_at: datetime, now: datetime) -> None:
        with self.transaction(now) as tx:
            tx.record_failure(source_id, message=message, status=status,
                              next_fetch_at=next_fetch_at)

    def defer_host(self, host: str, until: datetime) -> int:
        """Push every source of ``host`` due before ``until`` to ``until`` (the host asked us
        to wait, RFC 9110 §10.2.3); return how many were deferred."""
        with self.transaction(until) as tx:
            return tx.defer_host(host, until)

    def fetch_states(self, source_ids: Iterable[str]) -> dict[str, FetchState]:
        """The fetch state of many sources in one query (a batch reads them all up front)."""
        found = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(source_ids)):
                for row in conn.execute(sa.select(sources).where(sources.c.id.in_(chunk))):
                    found[row.id] = _fetch_state(row)
        return found

    def raw_digests(self, source_id: str) -> dict[str, str]:
        """GUID → digest of each entry as the source last gave it (see pipeline)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_RAW_DIGESTS, {"source_id": source_id})
            return {r.guid: r.raw_digest for r in rows if r.raw_digest}

    def source_statuses(self) -> list[SourceStatus]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(sources).order_by(sources.c.id)).all()
        return [SourceStatus(
            id=r.id, url=r.url, permanent_url=r.permanent_url, site_title=r.site_title,
            next_fetch_at=r.next_fetch_at, error_count=r.error_count, last_error=r.last_error,
            last_status=r.last_status, last_fetched_at=r.last_fetched_at,
            last_success_at=r.last_success_at, warning=r.warning, entry_count=r.entry_count,
        ) for r in rows]

    # --- one source update ---------------------------------------------------------------------

    @contextmanager
    def transaction(self, now: datetime) -> Iterator[UpdateTransaction]:
        """One source update. Updates are serialized so that two sources carrying the same
        new story at once cannot both create it: SQLite by its write lock, PostgreSQL by a
        transaction-scoped advisory lock shared by every worker process."""
        try:
            with self._writing() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                                 {"key": _UPDATE_LOCK})
                tx = UpdateTransaction(conn, now, self._bands)
                yield tx
                if tx.stories_changed:
                    version = conn.execute(sa.select(meta.c.value).where(
                        meta.c.key == STORIES_VERSION)).scalar()
                    _set_meta(conn, STORIES_VERSION, str(int(version or 0) + 1))
        except BaseException:
            self._bands.forget()  # it may hold keys of entries that were rolled back
            raise

    # --- reading stories -----------------------------------------------------------------------

    def select_stories(self, source_ids: Iterable[str], *, languages: Sequence[str] = (),
                       min_outlets: int = 1, outlets: Sequence[str] = (),
                       outlet_role: str = "any", limit: int = 50) -> list[Story]:
        """The newest stories that any of the given sources carried, newest first; with
        ``outlets``, only those whose source list names one of them in ``outlet_role``."""
        query = (_selected(source_ids, languages, min_outlets, outlets, outlet_role)
                 .order_by(stories.c.published.desc(), stories.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [_story(row) for row in conn.execute(query)]

    def unarchived_story_ids(self, feed_id: str, source_ids: Iterable[str], *,
                             languages: Sequence[str] = (), min_outlets: int = 1,
                             outlets: Sequence[str] = (), outlet_role: str = "any") -> list[int]:
        """The stories the feed's rule chooses that no archive page of the feed holds yet, in
        the order first seen (story ids only grow)."""
        archived = sa.exists().where(archive_pages.c.feed_id == feed_id,
                                     archive_pages.c.story_id == stories.c.id)
        query = (_selected(source_ids, languages, min_outlets, outlets, outlet_role)
                 .with_only_columns(stories.c.id).where(~archived).order_by(stories.c.id))
        with self.engine.connect() as conn:
            return [int(story_id) for story_id in conn.execute(query).scalars()]

    def archive_page_count(self, feed_id: str) -> int:
        query = sa.select(sa.func.max(archive_pages.c.page)).where(
            archive_pages.c.feed_id == feed_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def add_archive_pages(self, feed_id: str, pages: Sequence[Sequence[int]]) -> int:
        """Fix the stories of the feed's next full pages, in order; the page count after."""
        with self._writing() as conn:
            last = conn.execute(sa.select(sa.func.max(archive_pages.c.page)).where(
                archive_pages.c.feed_id == feed_id)).scalar() or 0
            # A few thousand rows a statement: the first publish after a cold ingest of
            # 10,000 feeds archives 260,000 stories, and their rows at once took 160 MB.
            for first in range(0, len(pages), ARCHIVE_PAGES_PER_INSERT):
                rows = [{"feed_id": feed_id, "page": last + number, "story_id": story_id}
                        for number, page in enumerate(
                            pages[first:first + ARCHIVE_PAGES_PER_INSERT], start=first + 1)
                        for story_id in page]
                if rows:
                    conn.execute(archive_pages.insert(), rows)
            return int(last) + len(pages)

    def archive_page_stories(self, feed_id: str, page: int) -> list[Story]:
        query = (sa.select(stories).join(archive_pages, archive_pages.c.story_id == stories.c.id)
                 .where(archive_pages.c.feed_id == feed_id, archive_pages.c.page == page))
        with self.engine.connect() as conn:
            return [_story(row) for row in conn.execute(query)]

    def stories_with_members(self, stories_: Sequence[Story]) -> list[Story]:
        """The same stories with their members attached (for operators)."""
        if not stories_:
            return []
        ids = [s.id for s in stories_]
        query = (sa.select(entries.c.story_id, entries.c.source_id, entries.c.guid,
                           entries.c.link, entries.c.reason, entries.c.score)
                 .where(entries.c.story_id.in_(ids)).order_by(entries.c.id))
        members: dict[int, list[StoryMember]] = {i: [] for i in ids}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                members[row.story_id].append(StoryMember(
                    row.source_id, row.guid, row.link, row.reason, row.score))
        return [_replace_members(s, tuple(members[s.id])) for s in stories_]

    def story_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(stories)).scalar_one())

    # --- small shared values ------------------------------------------------------------------

    def meta_value(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
            return None if value is None else str(value)

    def stories_version(self) -> int:
        """A number that grows whenever a story is added or changed (see STORIES_VERSION)."""
        return int(self.meta_value(STORIES_VERSION) or 0)

    def set_meta_value(self, key: str, value: str) -> None:
        with self._writing() as conn:
            _set_meta(conn, key, value)

    # --- rendered feeds ------------------------------------------------------------------------

    def save_rendered(self, feed: RenderedFeed) -> bool:
        """Store a rendering unless the same bytes are stored already; True if it changed."""
        key = (rendered.c.feed_id == feed.feed_id) & (rendered.c.format == feed.format)
        values = dict(content_type=feed.content_type, body=feed.body, gzip_body=feed.gzip_body,
                      etag=feed.etag, last_modified=feed.last_modified)
        with self._writing() as conn:
            if conn.dialect.name == "postgresql":  # two publishers must not both insert
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPDATE_LOCK})
            stored = conn.execute(
                sa.select(rendered.c.etag, rendered.c.last_modified).where(key)).first()
            if stored is not None and stored.etag == feed.etag:
                return False
            if stored is None:
                conn.execute(rendered.insert().values(
                    feed_id=feed.feed_id, format=feed.format, **values))
            else:
                conn.execute(rendered.update().where(key).values(
                    previous_modified=stored.last_modified, **values))
        return True

    def rendered_feed(self, feed_id: str, fmt: str) -> RenderedFeed | None:
        key = (rendered.c.feed_id == feed_id) & (rendered.c.format == fmt)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(rendered).where(key)).first()
        if row is None:
            return None
        return RenderedFeed(row.feed_id, row.format, row.content_type, row.body, row.gzip_body,
                            row.etag, row.last_modified, row.previous_modified)

    def drop_rendered_except(self, feed_ids: Iterable[str]) -> int:
        """Forget renderings and archive pages of feeds no longer configured, so they stop
        being served (a feed configured again later starts a new archive)."""
        ids = list(feed_ids)
        with self._writing() as conn:
            conn.execute(archive_pages.delete().where(archive_pages.c.feed_id.not_in(ids)))
            result = conn.execute(rendered.delete().where(rendered.c.feed_id.not_in(ids)))
            return int(result.rowcount)

    def rendered_etags(self) -> dict[tuple[str, str], str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(rendered.c.feed_id, rendered.c.format, rendered.c.etag))
            return {(r.feed_id, r.format): r.etag for r in rows}


# The statements of the ingest hot path, built once: SQLAlchemy then reuses their compiled
# form, instead of constructing and cache-keying a new statement for every entry.
_EXISTING_ENTRIES = sa.select(
    entries.c.id, entries.c.story_id, entries.c.digest, entries.c.published, entries.c.updated,
    entries.c.guid).where(entries.c.source_id == sa.bindparam("source_id"),
                          entries.c.guid.in_(sa.bindparam("guids", expanding=True)))
_LINKS_IN_USE = sa.select(entries.c.link, entries.c.story_id, entries.c.source_id).where(
    entries.c.link.in_(sa.bindparam("links", expanding=True)))
_STORIES_BY_HASHES = sa.select(entries.c.content_hash, entries.c.story_id).where(
    entries.c.content_hash.in_(sa.bindparam("hashes", expanding=True)))
_SIGNATURES = sa.select(entries.c.id, entries.c.story_id, entries.c.published,
                        entries.c.language, entries.c.lead_signature, entries.c.body_signature,
                        entries.c.numbers).where(
    entries.c.id.in_(sa.bindparam("ids", expanding=True)))
_NOT_MODIFIED = sources.update().where(sources.c.id == sa.bindparam("source_id")).values(
    etag=sa.bindparam("new_etag"), last_modified=sa.bindparam("new_last_modified"),
    last_status=sa.bindparam("new_status"), next_fetch_at=sa.bindparam("new_next_fetch_at"),
    last_fetched_at=sa.bindparam("new_now"), last_success_at=sa.bindparam("new_now"),
    error_count=0, last_error=None, redirect_target=sa.bindparam("new_redirect_target"),
    redirect_count=sa.bindparam("new_redirect_count"))
_MEMBERS = sa.select(entries).where(entries.c.story_id == sa.bindparam("story_id")).order_by(
    entries.c.id)
_ENTRY_COUNT = sa.select(sa.func.count()).select_from(entries).where(
    entries.c.source_id == sa.bindparam("source_id"))
# The columns it sets are those of the parameters given (SQLAlchemy caches one compiled form
# per set of columns): a statement built per call cost more than the update itself.
_UPDATE_SOURCE = sources.update().where(sources.c.id == sa.bindparam("source_id"))
_LARGEST_ID = {table.name: sa.select(sa.func.max(table.c.id)) for table in (stories, entries)}
_SOURCE_INFO = sa.select(sources.c.site_title, sources.c.site_url).where(
    sources.c.id == sa.bindparam("source_id"))
_RAW_DIGESTS = sa.select(entries.c.guid, entries.c.raw_digest).where(
    entries.c.source_id == sa.bindparam("source_id"))
_UPDATE_STORY = stories.update().where(stories.c.id == sa.bindparam("story_id"))
_INSERT_OUTLETS = story_outlets.insert()
_DELETE_OUTLETS = story_outlets.delete().where(
    story_outlets.c.story_id == sa.bindparam("story_id"))
_UPDATE_ENTRY = entries.update().where(entries.c.id == sa.bindparam("entry_id"))
_PUBLISHED = sa.select(entries.c.published).where(entries.c.id == sa.bindparam("entry_id"))
_DELETE_KEYS = entry_keys.delete().where(entry_keys.c.bucket == sa.bindparam("bucket"),
                                         entry_keys.c.entry_id == sa.bindparam("entry_id"))
_SET_RAW_DIGEST = entries.update().where(entries.c.id == sa.bindparam("entry_id")).values(
    raw_digest=sa.bindparam("new_raw_digest"))


class SourceInfos(Mapping[str, SourceInfo]):
    """Our sources named as outlets: the configured title first, else what the feed said.
    Each is read from the transaction when first asked for (so a source updated a moment ago
    is named right), because a source update names only the outlets of the stories it
    touches: reading every source for each would make a cold ingest of n sources cost n²."""

    def __init__(self, conn: sa.Connection, configs: Mapping[str, SourceConfig],
                 known: Mapping[str, SourceInfo]) -> None:
        self._conn = conn
        self._configs = configs
        self._infos = dict(known)

    def __getitem__(self, source_id: str) -> SourceInfo:
        info = self._infos.get(source_id)
        if info is None:
            config = self._configs[source_id]  # KeyError: not one of ours
            row = self._conn.execute(_SOURCE_INFO, {"source_id": source_id}).first()
            site_url = (row.site_url if row is not None else None) or (
                config.url if not config.is_local else None)
            title = config.title or (row.site_title if row is not None else None)
            info = self._infos[source_id] = SourceInfo(config.id, title, site_url,
                                                       config.priority)
        return info

    # Mapping's own ``in`` and ``get`` go through __getitem__ and its KeyError; building a
    # story asks for each member's source several times, so the common case is kept short.
    def __contains__(self, source_id: object) -> bool:
        return source_id in self._infos or source_id in self._configs

    def get(self, source_id: str, default: Any = None) -> Any:
        info = self._infos.get(source_id)
        if info is not None:
            return info
        return self[source_id] if source_id in self._configs else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._configs.keys() | self._infos.keys())

    def __len__(self) -> int:
        return len(self._configs.keys() | self._infos.keys())


class UpdateTransaction:
    """Reads and writes of one source update, inside one database transaction."""

    def __init__(self, conn: Connection, now: datetime, bands: BandIndex) -> None:
        self.conn = conn
        self.now = now
        self.stories_changed = False  # bumps STORIES_VERSION when the transaction ends
        self._bands_index = bands  # the store's, shared by its transactions
        self._bands_current = False  # caught up with the store in this transaction

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that is undone alone if it raises (one source of a
        group written together)."""
        try:
            with self.conn.begin_nested():
                yield
        except BaseException:
            self._bands_index.forget()  # it may hold keys of entries that were rolled back
            self._bands_current = False
            raise

    def _bands(self) -> BandIndex:
        """The near-duplicate index, caught up with the store once per transaction (before
        this transaction adds to it)."""
        if not self._bands_current:
            self._bands_index.catch_up(self.conn)
            self._bands_current = True
        return self._bands_index

    def is_open(self) -> bool:
        """Is the database transaction still there? After some errors (a full disk, an I/O
        error, no memory) SQLite rolls all of it back, savepoints and all."""
        dbapi = self.conn.connection.dbapi_connection
        return bool(getattr(dbapi, "in_transaction", True))  # sqlite3's view; psycopg keeps it

    def record_not_modified(self, source_id: str, *, etag: str | None,
                            last_modified: str | None, status: int, next_fetch_at: datetime,
                            redirect: RedirectUpdate | None = None) -> None:
        if redirect is None or redirect.permanent_url:  # rare: a statement of its own
            self.conn.execute(sources.update().where(sources.c.id == source_id).values(
                etag=etag, last_modified=last_modified, last_status=status,
                next_fetch_at=next_fetch_at, last_fetched_at=self.now, last_success_at=self.now,
                error_count=0, last_error=None, **_redirect_values(redirect)))
            return
        self.record_not_modified_many([NotModifiedUpdate(
            source_id, etag, last_modified, status, next_fetch_at, redirect, self.now)])

    def record_not_modified_many(self, updates: Sequence[NotModifiedUpdate]) -> None:
        """The usual 304s: one statement, compiled once, for all of them."""
        self.conn.execute(_NOT_MODIFIED, [{
            "source_id": u.source_id, "new_etag": u.etag, "new_last_modified": u.last_modified,
            "new_status": u.status, "new_next_fetch_at": u.next_fetch_at,
            "new_now": u.fetched_at,
            "new_redirect_target": u.redirect.target, "new_redirect_count": u.redirect.count}
            for u in updates])

    def record_failure(self, source_id: str, *, message: str, status: int | None,
                       next_fetch_at: datetime) -> None:
        self.conn.execute(sources.update().where(sources.c.id == source_id).values(
            last_error=message, last_status=status, next_fetch_at=next_fetch_at,
            last_fetched_at=self.now, error_count=sources.c.error_count + 1))

    def defer_host(self, host: str, until: datetime) -> int:
        if not host:
            return 0
        result = self.conn.execute(sources.update().where(
            sources.c.host == host,
            sa.or_(sources.c.next_fetch_at.is_(None), sources.c.next_fetch_at < until),
        ).values(next_fetch_at=until))
        return int(result.rowcount)

    def source_infos(self, configs: Mapping[str, SourceConfig],
                     known: Mapping[str, SourceInfo] | None = None) -> SourceInfos:
        """Our sources (``configs``, by id) named as outlets; ``known`` ones as given."""
        return SourceInfos(self.conn, configs, known or {})

    def existing_entries(self, source_id: str, guids: Iterable[str]) -> dict[str, ExistingEntry]:
        found = {}
        for chunk in _chunks(list(guids)):
            rows = self.conn.execute(_EXISTING_ENTRIES, {"source_id": source_id, "guids": chunk})
            for r in rows:
                found[r.guid] = ExistingEntry(r.id, r.story_id, r.digest, r.published, r.updated)
        return found

    def links_in_use(self, links: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        """Link → (story id, source id) of every stored entry with that link."""
        found: dict[str, list[tuple[int, str]]] = {}
        for chunk in _chunks(list(links)):
            for r in self.conn.execute(_LINKS_IN_USE, {"links": chunk}):
                found.setdefault(r.link, []).append((r.story_id, r.source_id))
        return found

    def stories_by_hashes(self, hashes: Iterable[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(list(hashes)):
            for r in self.conn.execute(_STORIES_BY_HASHES, {"hashes": chunk}):
                found.setdefault(r.content_hash, r.story_id)
        return found

    def band_neighbours(self, probes: Iterable[BandProbe]) -> dict[int, list[Neighbour]]:
        """Stored entries indexed under each band key, for entries dated within a probe's
        [since, until]: the keys are looked up in each week the range touches
        (``BandIndex``), and the entries found are read with their signatures."""
        keys_by_week: dict[int, set[int]] = {}
        for since, until, keys in probes:
            for bucket in range(band_bucket(since), band_bucket(until) + 1):
                keys_by_week.setdefault(bucket, set()).update(keys)
        bands = self._bands()
        rows = bands.neighbours(self.conn, keys_by_week)
        # An entry sharing many bands comes back once per band: load it once, if the index
        # has not kept it from an earlier look-up.
        found, missing = bands.cached({entry_id for _, entry_id in rows})
        for chunk in _chunks(missing):
            for r in self.conn.execute(_SIGNATURES, {"ids": chunk}):
                found[r.id] = Neighbour(
                    int(r.published.timestamp()), primary_language(r.language),
                    SimilarCandidate(r.id, r.story_id, r.lead_signature, r.body_signature,
                                     tuple(r.numbers)))
                bands.keep(r.id, found[r.id])
        by_key: dict[int, list[Neighbour]] = {}
        for key, entry_id in rows:
            neighbour = found.get(entry_id)
            if neighbour is not None:
                by_key.setdefault(key, []).append(neighbour)
        return by_key

    def _new_ids(self, table: sa.Table, count: int) -> list[int]:
        """Ids for ``count`` new rows of ``table``, so that they can be inserted many to a
        statement: asked to return its ids in order, an INSERT is run row by row on SQLite
        (a cold ingest made 56,000 single-row statements of them). On SQLite the ids follow
        the largest, as SQLite's own would: this transaction holds the write lock (BEGIN
        IMMEDIATE), so nobody else takes them. On PostgreSQL they come from the column's
        sequence, as a default would."""
        if self.conn.dialect.name == "postgresql":
            rows = self.conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
                "FROM generate_series(1, %s)", (table.name, count))
            return [int(r[0]) for r in rows]
        largest = self.conn.execute(_LARGEST_ID[table.name]).scalar()
        first = (largest or 0) + 1
        return list(range(first, first + count))

    def insert_stories(self, new: Sequence[tuple[str, StoryUpdate]]) -> list[int]:
        """Insert stories (GUID, fields); their ids, in order."""
        if not new:
            return []
        self.stories_changed = True
        ids = self._new_ids(stories, len(new))
        self._insert_many(stories, [
            dict(id=story_id, guid=guid, first_seen=self.now, **_story_values(story))
            for story_id, (guid, story) in zip(ids, new, strict=True)])
        self._insert_many(story_outlets, [
            {"story_id": story_id, "outlet_key": s.key[:255], "carried": s.carried}
            for story_id, (_, story) in zip(ids, new, strict=True) for s in story.sources])
        return ids

    def insert_entries(self, new: Sequence[NewEntry]) -> None:
        """Insert entries under their stories, and index their bands."""
        if not new:
            return
        ids = self._new_ids(entries, len(new))
        self._insert_many(entries, [
            dict(id=entry_id, story_id=n.story_id, source_id=n.entry.source_id,
                 guid=n.entry.guid, first_seen=self.now, reason=n.reason, score=n.score,
                 digest=n.digest, raw_digest=n.raw_digest, **_entry_values(n.entry))
            for entry_id, n in zip(ids, new, strict=True)])
        bands = self._bands()
        for entry_id, n in zip(ids, new, strict=True):
            bands.add(entry_id, n.entry.published, n.band_keys)
        self._insert_many(entry_keys, [
            key_row(entry_id, n.entry.published, n.band_keys)
            for entry_id, n in zip(ids, new, strict=True) if n.band_keys])

    def _insert_many(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows (each with the same keys) in one executemany through the driver, with
        each value converted by its column type as SQLAlchemy would. SQLAlchemy's own
        executemany spent more on its per-row bookkeeping than SQLite on the inserts."""
        if not rows:
            return
        names = list(rows[0])
        dialect = self.conn.dialect
        converters = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in names]
        mark = "%s" if dialect.name == "postgresql" else "?"
        sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
               f"VALUES ({', '.join([mark] * len(names))})")
        # Column by column, then zipped into rows: the conversions run in map() and the
        # tuples are built by zip(), not a generator per row.
        columns = []
        for name, convert in zip(names, converters, strict=True):
            values = [row[name] for row in rows]
            columns.append(values if convert is None else list(map(convert, values)))
        self.conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))

    def update_entry(self, entry_id: int, entry: Entry, *, digest: str,
                     band_keys: Sequence[int] = (), raw_digest: str | None = None) -> None:
        bands = self._bands()
        published = self.conn.execute(_PUBLISHED, {"entry_id": entry_id}).scalar_one()
        self.conn.execute(_UPDATE_ENTRY, dict(entry_id=entry_id, digest=digest,
                                              raw_digest=raw_digest, **_entry_values(entry)))
        self.conn.execute(_DELETE_KEYS, {"bucket": band_bucket(published), "entry_id": entry_id})
        self._insert_many(entry_keys, [key_row(entry_id, entry.published, band_keys)]
                          if band_keys else [])
        bands.add(entry_id, entry.published, band_keys)  # its old keys stay: see BandIndex
        bands.stamp_edit(self.conn, entry_id)

    def remember_raw_digest(self, entry_id: int, raw_digest: str) -> None:
        self.conn.execute(_SET_RAW_DIGEST, {"entry_id": entry_id, "new_raw_digest": raw_digest})

    def members(self, story_id: int) -> list[StoredMember]:
        rows = self.conn.execute(_MEMBERS, {"story_id": story_id})
        return [StoredMember(r.id, _entry(r), r.first_seen, r.reason, r.score) for r in rows]

    def write_story(self, story_id: int, update: StoryUpdate) -> None:
        self.stories_changed = True
        self.conn.execute(_UPDATE_STORY, dict(story_id=story_id, **_story_values(update)))
        self.conn.execute(_DELETE_OUTLETS, {"story_id": story_id})
        self._index_outlets(story_id, update)

    def _index_outlets(self, story_id: int, story: StoryUpdate) -> None:
        if story.sources:
            self.conn.execute(_INSERT_OUTLETS, [
                {"story_id": story_id, "outlet_key": s.key[:255], "carried": s.carried}
                for s in story.sources])

    def record_success(self, source_id: str, *, etag: str | None, last_modified: str | None,
                       content_hash: str, status: int, redirect: RedirectUpdate | None,
                       site_url: str | None, site_title: str | None, warning: str | None,
                       next_fetch_at: datetime) -> None:
        count = self.conn.execute(_ENTRY_COUNT, {"source_id": source_id}).scalar_one()
        values: dict[str, Any] = dict(
            etag=etag, last_modified=last_modified, content_hash=content_hash,
            last_status=status, site_url=site_url, site_title=site_title, warning=warning,
            next_fetch_at=next_fetch_at, last_fetched_at=self.now, last_success_at=self.now,
            error_count=0, last_error=None, entry_count=count, **_redirect_values(redirect))
        self.conn.execute(_UPDATE_SOURCE, {"source_id": source_id, **values})


# --- row ↔ record ------------------------------------------------------------------------------


def _selected(source_ids: Iterable[str], languages: Sequence[str], min_outlets: int,
              outlets: Sequence[str], outlet_role: str) -> sa.Select[Any]:
    """The stories a feed's rule chooses: carried by one of its sources, in one of its
    languages, with enough outlets, naming one of its outlets in the given role."""
    # EXISTS, not IN (subquery): the newest stories are read in date order and each is
    # checked through its entries, so a feed's 50 stories cost 50 look-ups, not a pass
    # over every entry of its sources.
    carried = sa.exists().where(entries.c.story_id == stories.c.id,
                                entries.c.source_id.in_(list(source_ids)))
    query = sa.select(stories).where(carried).where(stories.c.source_count >= min_outlets)
    if outlets:
        named = sa.select(story_outlets.c.story_id).where(
            story_outlets.c.outlet_key.in_([outlet_key(host, host) for host in outlets]))
        if outlet_role != "any":
            named = named.where(story_outlets.c.carried == (outlet_role == "carried"))
        query = query.where(stories.c.id.in_(named))
    if languages:
        query = query.where(sa.or_(*(
            sa.or_(stories.c.language == lang, stories.c.language.like(f"{lang}-%"))
            for lang in languages)))
    return query


def _set_meta(conn: Connection, key: str, value: str) -> None:
    if not conn.execute(meta.update().where(meta.c.key == key).values(value=value)).rowcount:
        conn.execute(meta.insert().values(key=key, value=value))


def _fetch_state(row: Any) -> FetchState:
    return FetchState(
        source_id=row.id, etag=row.etag, last_modified=row.last_modified,
        content_hash=row.content_hash, next_fetch_at=row.next_fetch_at,
        error_count=row.error_count, last_error=row.last_error, last_status=row.last_status,
        last_fetched_at=row.last_fetched_at, last_success_at=row.last_success_at,
        redirect_target=row.redirect_target, redirect_count=row.redirect_count,
        permanent_url=row.permanent_url,
    )


def _chunks(values: list[Any], size: int = 2000) -> Iterator[list[Any]]:
    """Look-ups in pieces: SQLite binds at most 32,766 parameters per statement."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _story_values(story: StoryUpdate) -> dict[str, Any]:
    return dict(
        title=story.title, link=story.link, summary_html=story.summary_html,
        content_html=story.content_html, text=story.text, published=story.published,
        updated=story.updated, language=story.language, place=story.place,
        authors=list(story.authors), categories=list(story.categories),
        enclosures=[_enclosure_json(e) for e in story.enclosures],
        sources=[_story_source_json(s) for s in story.sources],
        source_count=len(story.sources))


def _entry_values(entry: Entry) -> dict[str, Any]:
    return dict(
        link=entry.link, title=entry.title, summary_html=entry.summary_html,
        content_html=entry.content_html, text=entry.text, published=entry.published,
        updated=entry.updated, authors=list(entry.authors), categories=list(entry.categories),
        enclosures=[_enclosure_json(e) for e in entry.enclosures], language=entry.language,
        cited=[{"host": r.host, "name": r.name, "url": r.url} for r in entry.cited],
        place=entry.place, content_hash=entry.content_hash,
        lead_signature=entry.lead_signature, body_signature=entry.body_signature,
        numbers=list(entry.numbers))


def _entry(row: Any) -> Entry:
    return Entry(
        source_id=row.source_id, guid=row.guid, link=row.link, title=row.title,
        summary_html=row.summary_html, content_html=row.content_html, text=row.text,
        published=row.published, updated=row.updated, authors=tuple(row.authors),
        categories=tuple(row.categories), enclosures=_enclosures(row.enclosures),
        language=row.language, cited=tuple(SourceRef(**r) for r in row.cited),
        place=row.place, content_hash=row.content_hash, lead_signature=row.lead_signature,
        body_signature=row.body_signature, numbers=tuple(row.numbers))


def _story(row: Any) -> Story:
    return Story(
        id=row.id, guid=row.guid, title=row.title, link=row.link,
        summary_html=row.summary_html, content_html=row.content_html, text=row.text,
        published=row.published, updated=row.updated, first_seen=row.first_seen,
        language=row.language, place=row.place, authors=tuple(row.authors),
        categories=tuple(row.categories), enclosures=_enclosures(row.enclosures),
        sources=tuple(StorySource(**s) for s in row.sources))


def _replace_members(story: Story, members: tuple[StoryMember, ...]) -> Story:
    return replace(story, members=members)


def _enclosure_json(enclosure: Enclosure) -> dict[str, Any]:
    return {"url": enclosure.url, "type": enclosure.type, "length": enclosure.length}


def _enclosures(value: Sequence[Mapping[str, Any]]) -> tuple[Enclosure, ...]:
    return tuple(Enclosure(**e) for e in value)


def _story_source_json(source: StorySource) -> dict[str, Any]:
    return {"host": source.host, "name": source.name, "url": source.url,
            "carried": source.carried}


def _safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could hide reliably
        return "(unparsable database URL)"

