"""Reading a fetched feed: parse it, then normalize its new or edited entries. Pure.

Kept apart from ``pipeline`` so that only a process that parses imports what parsing needs
(lxml, nh3, numpy, feedparser): the worker processes of ``ingest.workers``, or ``pipeline``
itself on first use when it parses in its own threads.
"""

from __future__ import annotations

from datetime import datetime

from ..types import NormalizedFeed, SourceConfig
from .normalize import input_digest, normalize_entries, plain_title
from .parse import parse_feed


def normalize_feed(content: bytes, url: str, content_type: str | None, source: SourceConfig,
                   known: dict[str, str], now: datetime) -> NormalizedFeed:
    """Parse a fetched body and normalize its entries. ``known``: GUID → input digest of the
    entries already stored; a feed usually repeats most of its entries unchanged, and only new
    or edited ones are normalized again (an unchanged one would come out identical)."""
    feed = parse_feed(content, url, content_type)
    changed, digests = [], []
    for parsed in feed.entries:
        digest = input_digest(parsed, feed, source, url)
        if parsed.guid and known.get(parsed.guid.strip()) == digest:
            continue
        changed.append(parsed)
        digests.append(digest)
    # All at once: their fingerprints are computed together.
    entries = normalize_entries(changed, feed, source, url, now)
    raw_digests = {entry.guid: digest for entry, digest in zip(entries, digests, strict=True)}
    return NormalizedFeed(link=feed.link, site_title=plain_title(feed.title) or None,
                          ttl_minutes=feed.ttl_minutes, warning=feed.warning,
                          entry_count=len(feed.entries), entries=tuple(entries),
                          raw_digests=raw_digests)
