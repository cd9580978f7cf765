"""feedparser-shaped dictionaries → ``ParsedEntry``, shared by both parsers.

``parse`` gets these dictionaries from feedparser, ``fastparse`` builds the same shape with
lxml; reading them in one place keeps the two parsers' output the same by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..types import Enclosure, ParsedEntry, ParsedFeed, ParsedLink

DateReader = Callable[[object], "datetime | None"]


MAX_ENTRIES = 2000  # a feed with more is truncated: nobody publishes that many at once


def parsed_feed(feed: Mapping[str, Any], entries: Sequence[dict[str, Any]], date: DateReader,
                warning: str | None) -> ParsedFeed:
    return ParsedFeed(
        title=optional_text(feed.get("title")),
        link=feed.get("link") or None,
        language=optional_text(feed.get("language")),
        entries=tuple(parsed_entry(e, date) for e in entries[:MAX_ENTRIES]),
        ttl_minutes=non_negative(feed.get("ttl")),
        warning=warning,
    )


def parsed_entry(entry: dict[str, Any], date: DateReader) -> ParsedEntry:
    """``date`` turns the dictionary's *_parsed values into aware UTC datetimes."""
    content = entry.get("content") or []
    content_html = content[0].get("value") if content else None
    summary = entry.get("summary")
    if content_html and summary == content_html:
        summary = None  # RSS description doubling as content: keep it once
    return ParsedEntry(
        guid=optional_text(entry.get("id")),
        link=entry.get("link") or None,
        title=entry.get("title") or None,
        summary_html=summary or None,
        content_html=content_html or None,
        # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed
        # with a DeprecationWarning; we want exactly what the feed said.
        published=date(dict.get(entry, "published_parsed")),
        updated=date(dict.get(entry, "updated_parsed")),
        authors=tuple(a["name"] for a in entry.get("authors") or [] if a.get("name")),
        categories=tuple(t["term"] for t in entry.get("tags") or [] if t.get("term")),
        enclosures=tuple(_enclosures(entry)),
        language=optional_text(content[0].get("language")) if content else None,
        cited=tuple(_cited(entry)),
    )


def _enclosures(entry: Mapping[str, Any]) -> list[Enclosure]:
    return [Enclosure(url=link["href"], type=link.get("type") or None,
                      length=non_negative(link.get("length")))
            for link in entry.get("links") or []
            if link.get("rel") == "enclosure" and link.get("href")]


def _cited(entry: Mapping[str, Any]) -> list[ParsedLink]:
    """The outlets the feed itself names: RSS <source url>, Atom <source>, rel="via", dc:source."""
    cited = []
    source = entry.get("source")
    if isinstance(source, Mapping):
        url = source.get("href") or source.get("link")
        if url or source.get("title"):
            cited.append(ParsedLink(url=url or None, title=optional_text(source.get("title"))))
    for link in entry.get("links") or []:
        if link.get("rel") == "via" and link.get("href"):
            cited.append(ParsedLink(url=link["href"], title=optional_text(link.get("title"))))
    dc_source = entry.get("dc_source")
    if isinstance(dc_source, str) and dc_source.strip():
        value = dc_source.strip()
        is_url = value.startswith(("http://", "https://"))
        cited.append(ParsedLink(url=value if is_url else None, title=None if is_url else value))
    return cited


def optional_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def non_negative(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None
