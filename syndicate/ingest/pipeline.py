"""One source update: the stages in order, and nothing else.

    fetch ──> parse ──> normalize ──> dedupe ──> store (one transaction)

1. ``fetch.fetch``: conditional GET (or a local file read). ``NotModified`` ends the update.
2. ``parse.parse_feed``: feedparser → ``ParsedFeed``.
3. ``normalize.normalize_entry`` for every entry → ``Entry``.
4. in one store transaction, for every entry: look up what ``dedupe.decide`` needs (exact
   keys, then LSH candidates verified by ``dedupe.best_similar``), write the
   entry under its story, rebuild each touched story (``dedupe.build_story``), and record the
   source's new fetch state — so a crash leaves the source as it was, and the next fetch
   (which still holds the old validators) does the same work again.

A ``SourceError`` (network, HTTP status, not a feed) is recorded on the source with a backoff;
any other exception is a bug: it is logged with its traceback and recorded as well, so one
source never takes down the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from ..errors import GoneError, SourceError
from ..store import RedirectUpdate, Store, source_host
from ..types import (
    DedupeConfig,
    FetchResult,
    FetchState,
    NotModified,
    ParsedFeed,
    SourceConfig,
    SourceInfo,
)
from . import pacing
from .fetch import FetchSettings, body_hash, fetch
from .normalize import input_digest, normalize_entry, plain_title
from .parse import parse_feed
from .placing import apply_entries

log = logging.getLogger(__name__)

DEFAULT_DEDUPE = DedupeConfig()


@dataclass(frozen=True)
class UpdateOutcome:
    source_id: str
    status: str  # "updated", "not_modified", "failed"
    new_entries: int = 0
    changed_stories: frozenset[int] = field(default_factory=frozenset)
    error: str | None = None
    host_wait_until: datetime | None = None  # the host asked every client to wait (429/503)


def update_source(source: SourceConfig, *, store: Store, settings: FetchSettings,
                  session: requests.Session, all_sources: Iterable[SourceConfig],
                  now: datetime, dedupe_config: DedupeConfig = DEFAULT_DEDUPE) -> UpdateOutcome:
    """``all_sources``: every configured source, to name the outlets of merged stories."""
    state = store.fetch_state(source.id)
    floor = min(pacing.FLOOR, source.interval)
    url = fetch_url(source, state)
    try:
        result = fetch(url, state, settings, session)
        redirect = _follow_redirect(source, state, result.permanent_url)
        if isinstance(result, NotModified):
            store.record_not_modified(
                source.id, etag=result.etag, last_modified=result.last_modified,
                status=200 if result.body_unchanged else 304, now=now, redirect=redirect,
                next_fetch_at=pacing.next_fetch_after_success(
                    now, source.interval, headers=result.headers, floor=floor))
            log.info("source %s: not modified", source.id)
            return UpdateOutcome(source.id, "not_modified")
        feed = parse_feed(result.content, result.url, result.content_type)
        outcome = _store_entries(source, result, feed, store, all_sources, dedupe_config, now,
                                 floor, redirect)
    except SourceError as e:
        return _record_failure(source, url, store, state.error_count + 1, e, now, floor)
    except Exception as e:  # a bug: never silent, never fatal to the other sources
        log.exception("source %s: internal error", source.id)
        return _record_failure(source, url, store, state.error_count + 1, e, now, floor)
    if feed.warning:
        log.warning("source %s: %s", source.id, feed.warning)
    log.info("source %s: %d entries, %d new, %d stories changed", source.id,
             len(feed.entries), outcome.new_entries, len(outcome.changed_stories))
    return outcome


def _store_entries(source: SourceConfig, result: FetchResult, feed: ParsedFeed, store: Store,
                   all_sources: Iterable[SourceConfig], dedupe_config: DedupeConfig,
                   now: datetime, floor: timedelta,
                   redirect: RedirectUpdate | None) -> UpdateOutcome:
    # A changed feed usually repeats most of its entries unchanged: only new or edited ones
    # are normalized and placed again (an unchanged one would come out identical).
    known = store.raw_digests(source.id)
    entries, raw_digests = [], {}
    for parsed in feed.entries:
        digest = input_digest(parsed, feed, source, result.url)
        if parsed.guid and known.get(parsed.guid.strip()) == digest:
            continue
        entry = normalize_entry(parsed, feed, source, result.url, now)
        entries.append(entry)
        raw_digests[entry.guid] = digest
    with store.transaction(now) as tx:
        infos = {**tx.source_infos(all_sources), source.id: _own_info(source, feed, result)}
        new_entries, touched = apply_entries(tx, entries, dedupe_config, infos, raw_digests)
        tx.record_success(
            source.id, etag=result.etag, last_modified=result.last_modified,
            content_hash=body_hash(result.content), status=result.status,
            redirect=redirect, site_url=feed.link, site_title=plain_title(feed.title) or None,
            warning=feed.warning,
            next_fetch_at=pacing.next_fetch_after_success(
                now, source.interval, ttl_minutes=feed.ttl_minutes, headers=result.headers,
                floor=floor))
    return UpdateOutcome(source.id, "updated", new_entries, frozenset(touched))


def _own_info(source: SourceConfig, feed: ParsedFeed, result: FetchResult) -> SourceInfo:
    site_url = feed.link or (None if source.is_local else result.url)
    title = source.title or plain_title(feed.title) or None  # a feed's title is not trusted
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


def _record_failure(source: SourceConfig, url: str, store: Store, error_count: int,
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
    store.record_failure(source.id, message=message, status=status, next_fetch_at=next_at,
                         now=now)
    log.warning("source %s: %s (error %d in a row; next try %s)", source.id, message,
                error_count, next_at.isoformat(timespec="seconds"))
    host_wait_until = None
    retry_after = getattr(error, "retry_after", None)
    if status in (429, 503) and retry_after:
        # Retry-After speaks for the server, not just this feed: every source on the host waits.
        host_wait_until = now + timedelta(seconds=retry_after)
        deferred = store.defer_host(source_host(url), host_wait_until)
        log.warning("host %s asked us to wait %ds (HTTP %d); %d sources deferred",
                    source_host(url), retry_after, status, deferred)
    return UpdateOutcome(source.id, "failed", error=message, host_wait_until=host_wait_until)

