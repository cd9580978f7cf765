"""Selecting stories for output feeds and storing their renderings, once per change.

Every feed is rendered in every format (and as its river page for people) after any story
changed, since a story may be in any feed; the bytes, their gzip variant and a strong ETag
are stored, so web processes only compare a header and write
precomputed bytes. A rendering whose bytes did not change keeps its ETag and Last-Modified:
the feed's own dates come from its stories, never from the clock, so re-rendering an unchanged
feed gives the same bytes and aggregators keep getting 304s.

History (RFC 5005, paged archives): a feed's stories, in the order they were first seen, fill
pages of the feed's ``limit``; every full page is an archive document
(``/feeds/<id>/archive/<n>.atom|rss``, 1 the oldest) whose stories are fixed when it fills
(``fill_archive``, table ``archive_pages``), and the current feed links to the newest with
``prev-archive``. A new subscriber, or an
aggregator that fell behind, walks back from there. Archive pages are not rendered here but by
the web process that is asked for one (``render_archive``), once per change of the stories:
there can be thousands, and few are ever read.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from ..store import Store
from ..types import Config, FeedConfig, RenderedFeed, Story

# .render and .people (feedgen, lxml) are imported by the functions that render: a fetch in
# which nothing changed never does.

log = logging.getLogger(__name__)

FORMATS = ("rss", "atom", "json")
PAGE = "html"  # the river page of a feed, rendered and served like the feeds
_EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # an empty feed's stable "updated"


def select_stories(store: Store, config: Config, feed: FeedConfig) -> list[Story]:
    return store.select_stories(config.feed_source_ids(feed), limit=feed.limit,
                                **_rule(feed))


def _rule(feed: FeedConfig) -> dict[str, Any]:
    """The feed's choice of stories beyond its sources, as the store's keyword arguments."""
    return {"languages": feed.languages, "min_outlets": feed.min_outlets,
            "outlets": feed.outlets, "outlet_role": feed.outlet_role}


def fill_archive(store: Store, config: Config, feed: FeedConfig) -> int:
    """Fix the stories of every page that can be filled now, and return the feed's page
    count. The stories no page holds yet, in the order first seen, fill page after page of
    the feed's ``limit``; a page's stories never change after. A story that joins the
    feed later (another of its sources carries it, it reaches ``min_outlets``) waits in that
    open tail for the next page, however old it is, so that a reader who walked the archive
    before never misses it."""
    waiting = store.unarchived_story_ids(feed.id, config.feed_source_ids(feed), **_rule(feed))
    full = [waiting[i:i + feed.limit]
            for i in range(0, len(waiting) - feed.limit + 1, feed.limit)]
    if full:
        return store.add_archive_pages(feed.id, full)
    return store.archive_page_count(feed.id)


def render_archive(store: Store, config: Config, feed: FeedConfig, page: int,
                   fmt: str) -> tuple[bytes, datetime] | None:
    """Archive page ``page`` (1: the oldest stories) of a feed in ``fmt`` ("atom" or
    "rss") with its last change, or None when the feed has no such page (yet)."""
    from .render import ARCHIVE_FORMATS, History, render

    if fmt not in ARCHIVE_FORMATS or page < 1:
        return None
    pages = store.archive_page_count(feed.id)
    if page > pages:
        return None
    stories = store.archive_page_stories(feed.id, page)
    stories.sort(key=lambda s: (s.published, s.id), reverse=True)  # newest first, as the feed
    updated = max((s.updated for s in stories), default=_EMPTY_FEED_DATE)
    body = render(feed, stories, fmt, service=config.service, updated=updated,
                  history=History(pages, page))
    return body, updated


def publish_feeds(store: Store, config: Config, feeds: Iterable[FeedConfig],
                  now: datetime) -> list[str]:
    """Render the given feeds in every format; return the ids of those whose bytes changed."""
    from .people import river_page
    from .render import History, render

    changed = []
    for feed in feeds:
        stories = select_stories(store, config, feed)
        updated = max((s.updated for s in stories), default=_EMPTY_FEED_DATE)
        history = History(fill_archive(store, config, feed))
        feed_changed = False
        for fmt in FORMATS:
            body = render(feed, stories, fmt, service=config.service, updated=updated,
                          history=history)
            if store.save_rendered(rendered_feed(feed.id, fmt, body, now)):
                feed_changed = True
        page = river_page(feed, stories, config.service)  # for people; not a feed change
        store.save_rendered(rendered_feed(feed.id, PAGE, page, now))
        if feed_changed:
            changed.append(feed.id)
            log.info("feed %s: rendered %d stories", feed.id, len(stories))
    return changed


PUBLISHED = "published"  # meta row: the fingerprint of what the stored renderings show


def publish_fingerprint(config: Config, stories_version: int) -> str:
    """Everything the renderings depend on: the stories (their version, see the store), the
    feeds' definitions, the sources' tags and titles that pick and name them, the public URL
    and hub, and this syndicate's version. Equal fingerprints give equal bytes, so publishing
    can be skipped: a re-poll where nothing changed renders nothing."""
    facts = (__version__, stories_version, config.service.base_url, config.service.websub_hub,
             config.feeds, [(s.id, s.tags, s.title, s.url) for s in config.sources])
    return hashlib.sha256(repr(facts).encode()).hexdigest()


def rendered_feed(feed_id: str, fmt: str, body: bytes, now: datetime) -> RenderedFeed:
    from .people import PAGE_CONTENT_TYPE
    from .render import CONTENT_TYPES

    # mtime=0 keeps the gzip bytes a pure function of the body.
    gzip_body = gzip.compress(body, compresslevel=6, mtime=0)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    content_type = PAGE_CONTENT_TYPE if fmt == PAGE else CONTENT_TYPES[fmt]
    return RenderedFeed(feed_id, fmt, content_type, body, gzip_body, etag,
                        now.replace(microsecond=0))
