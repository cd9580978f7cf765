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
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import feedparser

from ..errors import ParseError
from ..types import Enclosure, ParsedEntry, ParsedFeed, ParsedLink
from .fastparse import parse_fast
from .jsonfeed import looks_like_json, parse_json_feed

_MAX_ENTRIES = 2000  # a feed with more is truncated: nobody publishes that many at once


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
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=feed.get("link") or None,
        language=_text(feed.get("language")),
        entries=tuple(_entry(e) for e in parsed.entries[:_MAX_ENTRIES]),
        ttl_minutes=_int(feed.get("ttl")),
        warning=warning,
    )


def _not_a_feed_message(content: bytes, exception: object) -> str:
    head = content[:1024].lstrip().lower()
    if not head:
        return "the response was empty, not a feed"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "the response is an HTML page, not a feed (is the URL the feed's, not the site's?)"
    detail = f": {exception}" if exception else ""
    return f"the response is not an RSS, Atom or JSON feed{detail}"


def _entry(entry: dict[str, Any]) -> ParsedEntry:
    content = entry.get("content") or []
    content_html = content[0].get("value") if content else None
    summary = entry.get("summary")
    if content_html and summary == content_html:
        summary = None  # RSS description doubling as content: keep it once
    return ParsedEntry(
        guid=_text(entry.get("id")),
        link=entry.get("link") or None,
        title=entry.get("title") or None,
        summary_html=summary or None,
        content_html=content_html or None,
        # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed
        # with a DeprecationWarning; we want exactly what the feed said.
        published=_date(dict.get(entry, "published_parsed")),
        updated=_date(dict.get(entry, "updated_parsed")),
        authors=tuple(a["name"] for a in entry.get("authors") or [] if a.get("name")),
        categories=tuple(t["term"] for t in entry.get("tags") or [] if t.get("term")),
        enclosures=tuple(_enclosures(entry)),
        language=_text((entry.get("content") or [{}])[0].get("language"))
        if content else None,
        cited=tuple(_cited(entry)),
    )


def _enclosures(entry: Mapping[str, Any]) -> list[Enclosure]:
    found = []
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and link.get("href"):
            found.append(Enclosure(url=link["href"], type=link.get("type") or None,
                                   length=_int(link.get("length"))))
    return found


def _cited(entry: Mapping[str, Any]) -> list[ParsedLink]:
    """The outlets the feed itself names: RSS <source url>, Atom <source>, rel="via", dc:source."""
    cited = []
    source = entry.get("source")
    if isinstance(source, Mapping):
        url = source.get("href") or source.get("link")
        if url or source.get("title"):
            cited.append(ParsedLink(url=url or None, title=_text(source.get("title"))))
    for link in entry.get("links") or []:
        if link.get("rel") == "via" and link.get("href"):
            cited.append(ParsedLink(url=link["href"], title=_text(link.get("title"))))
    dc_source = entry.get("dc_source")
    if isinstance(dc_source, str) and dc_source.strip():
        value = dc_source.strip()
        is_url = value.startswith(("http://", "https://"))
        cited.append(ParsedLink(url=value if is_url else None, title=None if is_url else value))
    return cited


def _date(value: object) -> datetime | None:
    """feedparser's UTC struct_time → aware datetime; absurd values are dropped."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
