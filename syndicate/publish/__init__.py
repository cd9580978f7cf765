"""Selecting stories for output feeds and storing their renderings, once per change.

Every feed is rendered in every format (and as its river page for people) after any story
changed, since a story may be in any feed; the bytes, their gzip variant and a strong ETag
are stored, so web processes only compare a header and write
precomputed bytes. A rendering whose bytes did not change keeps its ETag and Last-Modified:
the feed's own dates come from its stories, never from the clock, so re-rendering an unchanged
feed gives the same bytes and aggregators keep getting 304s.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from ..store import Store
from ..types import Config, FeedConfig, RenderedFeed, Story
from .people import PAGE_CONTENT_TYPE, river_page
from .render import CONTENT_TYPES, render

log = logging.getLogger(__name__)

FORMATS = ("rss", "atom", "json")
PAGE = "html"  # the river page of a feed, rendered and served like the feeds
_EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # an empty feed's stable "updated"


def select_stories(store: Store, config: Config, feed: FeedConfig) -> list[Story]:
    return store.select_stories(config.feed_source_ids(feed), languages=feed.languages,
                                min_outlets=feed.min_outlets, outlets=feed.outlets,
                                outlet_role=feed.outlet_role, limit=feed.limit)


def publish_feeds(store: Store, config: Config, feeds: Iterable[FeedConfig],
                  now: datetime) -> list[str]:
    """Render the given feeds in every format; return the ids of those whose bytes changed."""
    changed = []
    for feed in feeds:
        stories = select_stories(store, config, feed)
        updated = max((s.updated for s in stories), default=_EMPTY_FEED_DATE)
        feed_changed = False
        for fmt in FORMATS:
            body = render(feed, stories, fmt, service=config.service, updated=updated)
            if store.save_rendered(rendered_feed(feed.id, fmt, body, now)):
                feed_changed = True
        page = river_page(feed, stories, config.service)  # for people; not a feed change
        store.save_rendered(rendered_feed(feed.id, PAGE, page, now))
        if feed_changed:
            changed.append(feed.id)
            log.info("feed %s: rendered %d stories", feed.id, len(stories))
    return changed


def rendered_feed(feed_id: str, fmt: str, body: bytes, now: datetime) -> RenderedFeed:
    # mtime=0 keeps the gzip bytes a pure function of the body.
    gzip_body = gzip.compress(body, compresslevel=6, mtime=0)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    content_type = PAGE_CONTENT_TYPE if fmt == PAGE else CONTENT_TYPES[fmt]
    return RenderedFeed(feed_id, fmt, content_type, body, gzip_body, etag,
                        now.replace(microsecond=0))
