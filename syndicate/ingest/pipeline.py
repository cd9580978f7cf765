"""One source update: the stages in order, and nothing else.

    fetch ──> parse + normalize ──> (a PendingWrite) ──> dedupe + store, in a transaction

``prepare_update`` does everything that needs no write lock:

1. ``fetch.fetch``: conditional GET (or a local file read). ``NotModified`` ends the update.
2. ``reading.normalize_feed`` (``parse.parse_feed``, then ``normalize.normalize_entry`` for
   every new or edited entry); a pure function of picklable values, so it can run in a worker
   process (``ingest.workers``) while this thread fetches the next source.

and returns a ``PendingWrite``: what the update has left to write. ``write_updates`` writes
several of them in one store transaction (``ingest.writer`` groups those that queue up): the
plain not-modified ones (most of a re-poll) in one statement, each other one in a savepoint:
for every entry it looks up what ``dedupe.decide`` needs (exact keys, then LSH
candidates verified by ``dedupe.best_similar``), writes the entry under its story, rebuilds
each touched story (``dedupe.build_story``) and records the source's new fetch state. A crash
leaves every source of the group as it was, and the next fetch (which still holds the old
validators) does the same work again.

A ``SourceError`` (network, HTTP status, not a feed) is recorded on the source with a backoff;
any other exception is a bug: it is logged with its traceback and recorded as well, so one
source never takes down the others (nor the rest of its group: its savepoint is rolled back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import GoneError, SourceError, StoreError, causes
from ..store import NotModifiedUpdate, RedirectUpdate, Store, UpdateTransaction, source_host
from ..types import (
    DedupeConfig,
    FetchResult,
    FetchState,
    NormalizedFeed,
    NotModified,
    SourceConfig,
    SourceInfo,
)
from . import pacing
from .client import HttpClient
from .fetch import FetchSettings, body_hash, fetch
from .placing import apply_entries

log = logging.getLogger(__name__)

DEFAULT_DEDUPE = DedupeConfig()


@dataclass(frozen=True)
class UpdateOutcome:
    source_id: str
    status: str  # "updated", "not_modified", "failed"
    new_entries: int = 0
    # How many stories changed (not which: ``fetch --all`` keeps every source's outcome to
    # the end, and ten thousand sets of story ids were tens of MB it never read).
    changed_story_count: int = 0
    error: str | None = None
    host_wait_until: datetime | None = None  # the host asked every client to wait (429/503)


# How ``prepare_update`` runs ``reading.normalize_feed``: in this thread, or in a worker process.
Normalizer = Callable[[bytes, str, str | None, SourceConfig, dict[str, str], datetime],
                      NormalizedFeed]


def normalize_inline(content: bytes, url: str, content_type: str | None, source: SourceConfig,
                     known: dict[str, str], now: datetime) -> NormalizedFeed:
    """``reading.normalize_feed`` in this thread. Imported on first use: parsing and
    normalizing pull in lxml, nh3, numpy and feedparser, which a process whose feeds all
    answer 304, or whose parsing runs in worker processes, never needs."""
    from .reading import normalize_feed

    return normalize_feed(content, url, content_type, source, known, now)


@dataclass(frozen=True)
class PendingWrite:
    """What one source update has left to do in the store: ``write`` it inside a transaction
    (a savepoint of it); if that raises, the savepoint is rolled back and ``fail`` records the
    error instead."""

    source: SourceConfig
    url: str  # the URL fetched
    error_count: int  # failures in a row before this update
    now: datetime
    write: Callable[[UpdateTransaction], UpdateOutcome]
    entry_count: int = 0  # entries to place (a measure of the write's size)
    host_wait_until: datetime | None = None  # the host asked every client to wait (429/503)
    # A plain not-modified, which ``write_updates`` writes with the group's others at once.
    not_modified: NotModifiedUpdate | None = None

    def fail(self, tx: UpdateTransaction, error: Exception) -> UpdateOutcome:
        if not isinstance(error, SourceError):
            log.error("source %s: internal error while storing", self.source.id,
                      exc_info=error)
        return _record_failure(self.source, self.url, tx, self.error_count + 1, error,
                               self.now, _floor(self.source))


def prepare_update(source: SourceConfig, *, store: Store, settings: FetchSettings,
                   client: HttpClient, all_sources: Mapping[str, SourceConfig],
                   now: datetime, dedupe_config: DedupeConfig = DEFAULT_DEDUPE,
                   state: FetchState | None = None,
                   normalizer: Normalizer = normalize_inline) -> PendingWrite:
    """Fetch and normalize one source; what is left to write. ``all_sources``: every
    configured source by id (``Config.sources_by_id``), to name the outlets of merged
    stories. ``state``: the source's fetch
    state when the caller has read it already."""
    state = state or store.fetch_state(source.id)
    url = fetch_url(source, state)

    def pending(write: Callable[[UpdateTransaction], UpdateOutcome], entry_count: int = 0,
                host_wait_until: datetime | None = None,
                not_modified: NotModifiedUpdate | None = None) -> PendingWrite:
        return PendingWrite(source, url, state.error_count, now, write, entry_count,
                            host_wait_until, not_modified)

    try:
        result = fetch(url, state, settings, client)
        redirect = _follow_redirect(source, state, result.permanent_url)
        if isinstance(result, NotModified):
            update = _not_modified_update(source, result, redirect, now)
            return pending(lambda tx: _write_not_modified(update, tx),
                           not_modified=None if redirect.permanent_url else update)
        known = store.raw_digests(source.id) if state.last_success_at else {}
        feed = normalizer(result.content, result.url, result.content_type, source, known, now)
    except Exception as e:
        if not isinstance(e, SourceError):  # a bug: never silent, never fatal to the others
            log.exception("source %s: internal error", source.id)
        error = e
        return pending(lambda tx: _record_failure(source, url, tx, state.error_count + 1,
                                                  error, now, _floor(source)),
                       host_wait_until=_host_wait_until(error, now))
    return pending(lambda tx: _write_entries(source, result, feed, redirect, tx, all_sources,
                                             dedupe_config, now), len(feed.entries))


def write_updates(store: Store, pending: Sequence[PendingWrite]) -> list[UpdateOutcome]:
    """Write source updates in one transaction: the plain not-modified ones in one statement,
    each of the others in a savepoint of its own (the not-modified ones too, one by one, if
    their statement fails)."""
    outcomes: dict[int, UpdateOutcome] = {}
    with store.transaction(pending[0].now) as tx:
        unchanged = {i: update.not_modified for i, update in enumerate(pending)
                     if update.not_modified is not None}
        if len(unchanged) > 1:
            try:
                with tx.savepoint():
                    tx.record_not_modified_many(list(unchanged.values()))
                outcomes = {i: UpdateOutcome(update.source_id, "not_modified")
                            for i, update in unchanged.items()}
            except Exception as e:
                if not tx.is_open():
                    raise _group_rolled_back(e, len(pending)) from e
        for i, update in enumerate(pending):
            if i in outcomes:
                continue
            tx.now = update.now
            try:
                with tx.savepoint():
                    outcome = update.write(tx)
            except Exception as e:
                if not tx.is_open():
                    raise _group_rolled_back(e, len(pending)) from e
                outcome = update.fail(tx, e)
            outcomes[i] = outcome
    return [outcomes[i] for i in range(len(pending))]


def _group_rolled_back(error: Exception, sources: int) -> StoreError:
    """The database rolled back the whole transaction (SQLite does on a full disk, an I/O
    error, no memory): nothing of the group stands, so the group fails as one and no outcome
    may claim otherwise. The message names what failed first, not the rollback to the
    savepoint it left behind."""
    first = next((c for c in causes(error) if "savepoint" not in str(c).lower()), error)
    return StoreError(f"the database rolled back the writes of {sources} sources: {first}")


def _floor(source: SourceConfig) -> timedelta:
    return min(pacing.FLOOR, source.interval)


def _not_modified_update(source: SourceConfig, result: NotModified, redirect: RedirectUpdate,
                         now: datetime) -> NotModifiedUpdate:
    return NotModifiedUpdate(
        source.id, result.etag, result.last_modified, 200 if result.body_unchanged else 304,
        pacing.next_fetch_after_success(now, source.interval, headers=result.headers,
                                        floor=_floor(source)), redirect, now)


def _write_not_modified(update: NotModifiedUpdate, tx: UpdateTransaction) -> UpdateOutcome:
    tx.record_not_modified(update.source_id, etag=update.etag,
                           last_modified=update.last_modified, status=update.status,
                           next_fetch_at=update.next_fetch_at, redirect=update.redirect)
    return UpdateOutcome(update.source_id, "not_modified")


def _write_entries(source: SourceConfig, result: FetchResult, feed: NormalizedFeed,
                   redirect: RedirectUpdate, tx: UpdateTransaction,
                   all_sources: Mapping[str, SourceConfig], dedupe_config: DedupeConfig,
                   now: datetime) -> UpdateOutcome:
    infos = tx.source_infos(all_sources, {source.id: _own_info(source, feed, result)})
    new_entries, touched = apply_entries(tx, feed.entries, dedupe_config, infos,
                                         feed.raw_digests)
    tx.record_success(
        source.id, etag=result.etag, last_modified=result.last_modified,
        content_hash=body_hash(result.content), status=result.status,
        redirect=redirect, site_url=feed.link, site_title=feed.site_title,
        warning=feed.warning,
        next_fetch_at=pacing.next_fetch_after_success(
            now, source.interval, ttl_minutes=feed.ttl_minutes, headers=result.headers,
            floor=_floor(source)))
    if feed.warning:
        log.warning("source %s: %s", source.id, feed.warning)
    log.info("source %s: %d entries, %d new, %d stories changed", source.id,
             feed.entry_count, new_entries, len(touched))
    return UpdateOutcome(source.id, "updated", new_entries, len(touched))


def _own_info(source: SourceConfig, feed: NormalizedFeed, result: FetchResult) -> SourceInfo:
    site_url = feed.link or (None if source.is_local else result.url)
    title = source.title or feed.site_title  # a feed's title is not trusted
    return SourceInfo(source.id, title, site_url, source.priority)


def fetch_url(source: SourceConfig, state: FetchState) -> str:
    """The URL to fetch: where a confirmed permanent redirect points, else the config's."""
    return state.permanent_url or source.url


def _follow_redirect(source: SourceConfig, state: FetchState,
                     seen: str | None) -> RedirectUpdate:
    target, count, confirmed = pacing.follow_redirect(
        state.redirect_target, state.redirect_count, seen)
    if confirmed:
        log.warning("source %s: moved permanently to %s (seen on %d fetches in a row); "
                    "fetching the new URL from now on. Update the url in the config: it stays "
                    "the source of truth, and changing it starts over from the new URL.",
                    source.id, target, count)
    elif seen is not None:
        log.info("source %s: permanent redirect to %s (%d of %d before it takes effect)",
                 source.id, seen, count, pacing.REDIRECT_CONFIRMATIONS)
    return RedirectUpdate(target, count, target if confirmed else None)


def _record_failure(source: SourceConfig, url: str, tx: UpdateTransaction, error_count: int,
                    error: Exception, now: datetime, floor: timedelta) -> UpdateOutcome:
    message = str(error) if isinstance(error, SourceError) else (
        f"internal error ({type(error).__name__}: {error}); please report it")
    status = getattr(error, "status", None)
    if isinstance(error, GoneError):
        next_at = now + pacing.CEILING * 365  # 410 Gone: stop polling until the config changes
    else:
        next_at = pacing.next_fetch_after_failure(
            now, source.interval, error_count,
            retry_after_seconds=getattr(error, "retry_after", None), floor=floor)
    tx.record_failure(source.id, message=message, status=status, next_fetch_at=next_at)
    log.warning("source %s: %s (error %d in a row; next try %s)", source.id, message,
                error_count, next_at.isoformat(timespec="seconds"))
    host_wait_until = _host_wait_until(error, now)
    if host_wait_until is not None:
        deferred = tx.defer_host(source_host(url), host_wait_until)
        log.warning("host %s asked us to wait %ds (HTTP %s); %d sources deferred",
                    source_host(url), getattr(error, "retry_after", 0), status, deferred)
    return UpdateOutcome(source.id, "failed", error=message, host_wait_until=host_wait_until)


def _host_wait_until(error: Exception, now: datetime) -> datetime | None:
    """Retry-After on a 429 or 503 speaks for the server, not just this feed: every source on
    the host waits until then."""
    retry_after = getattr(error, "retry_after", None)
    if getattr(error, "status", None) in (429, 503) and retry_after:
        return now + timedelta(seconds=retry_after)
    return None
