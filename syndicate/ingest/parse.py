"""Feed bytes → ``ParsedFeed``: JSON Feed to ``jsonfeed``, well-formed RSS 2.0 and Atom 1.0 to
the lxml fast path (``fastparse``, which gives what feedparser would, measured on the corpus),
everything else to feedparser; this and fastparse are the only modules that know feedparser.

feedparser reads RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and CDF (JSON Feed goes to ``jsonfeed``),
resolves relative links against ``xml:base``, and recovers what it can from ill-formed XML
("bozo" feeds). What it returns is not trusted yet: normalize sanitizes and resolves against
the document URL. We keep every entry it recovers and pass its complaint
on as a warning; a body that yields no feed at all (an HTML page, garbage) is a
``ParseError``.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

import feedparser

from ..errors import ParseError
from ..types import ParsedFeed
from .entrydict import parsed_feed
from .fastparse import parse_fast
from .jsonfeed import looks_like_json, parse_json_feed


def parse_feed(content: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a feed body fetched from ``url`` (the base for relative links)."""
    if looks_like_json(content):
        return parse_json_feed(content, url)
    fast = parse_fast(content, url, content_type)
    if fast is not None:  # well-formed RSS 2.0 / Atom 1.0: lxml, ~9x faster than feedparser
        return fast
    # No content-location: feedparser would resolve a permalink <guid> against it, making an
    # entry's identity depend on the URL it was fetched from (a redirect would duplicate it).
    # normalize resolves links, content and enclosures against ``url`` instead, and nh3
    # sanitizes there, so feedparser's own (slower) sanitizer is not needed.
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(content, response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=True)
    except Exception as e:  # feedparser should not raise; if it does, it is this body's fault
        raise ParseError(f"the feed could not be parsed: {e}") from e

    version = parsed.get("version") or ""
    if not version and not parsed.entries:
        raise ParseError(_not_a_feed_message(content, parsed.get("bozo_exception")))

    feed = parsed.feed
    warning = None
    if parsed.get("bozo"):
        problem = parsed.get("bozo_exception")
        warning = f"feed is not well-formed, recovered what could be read: {problem}"
    return parsed_feed(feed, parsed.entries, _date, warning)


def _not_a_feed_message(content: bytes, exception: object) -> str:
    head = content[:1024].lstrip().lower()
    if not head:
        return "the response was empty, not a feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "the response is an HTML page, not a feed (is the URL the feed's, not the site's?)"
    detail = f": {exception}" if exception else ""
    return f"the response is not an RSS, Atom or JSON feed{detail}"


def _date(value: object) -> datetime | None:
    """feedparser's UTC struct_time → aware datetime; absurd values are dropped."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
