"""JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1) → ``ParsedFeed``.

feedparser 6 reads no JSON, so this is the adapter for that wire format. Like feedparser's
output, what it returns is not yet trusted: HTML is sanitized and URLs resolved by normalize.
Unknown or ill-typed fields are ignored, never fatal; a document that is not a JSON Feed at
all is a ``ParseError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from ..errors import ParseError
from ..types import Enclosure, ParsedEntry, ParsedFeed, ParsedLink

_VERSION_PREFIX = "https://jsonfeed.org/version/"
_MAX_ITEMS = 2000


def looks_like_json(content: bytes) -> bool:
    return content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ParseError(f"the response is not an RSS, Atom or JSON feed: invalid JSON ({e})") \
            from e
    if not isinstance(document, dict) or not str(document.get("version", "")).startswith(
            _VERSION_PREFIX):
        raise ParseError("the response is not an RSS, Atom or JSON feed: JSON without a "
                         "JSON Feed version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("the JSON Feed has no items list")
    base = _str(document.get("feed_url")) or url
    entries = tuple(_item(item, base, document) for item in items[:_MAX_ITEMS]
                    if isinstance(item, dict))
    return ParsedFeed(
        title=_str(document.get("title")),
        link=_url(document.get("home_page_url"), base),
        language=_str(document.get("language")),
        entries=entries,
    )


def _item(item: Mapping[str, Any], base: str, feed: Mapping[str, Any]) -> ParsedEntry:
    content_html = _str(item.get("content_html"))
    content_text = _str(item.get("content_text"))
    if content_html is None and content_text is not None:
        content_html = "<p>" + _escape(content_text).replace("\n\n", "</p><p>") + "</p>"
    authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict)
                                      else feed.get("authors") or [])
    return ParsedEntry(
        guid=_str(item.get("id")) if not isinstance(item.get("id"), int) else str(item["id"]),
        link=_url(item.get("url"), base),
        title=_str(item.get("title")),
        summary_html=_escape(summary) if (summary := _str(item.get("summary"))) else None,
        content_html=content_html,
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
        authors=tuple(a["name"] for a in authors if isinstance(a, dict) and _str(a.get("name"))),
        categories=tuple(t for t in item.get("tags") or [] if isinstance(t, str) and t.strip()),
        enclosures=tuple(_attachments(item.get("attachments"), base)),
        language=_str(item.get("language")),
        cited=tuple(_cited(item.get("external_url"), base)),
    )


def _attachments(value: object, base: str) -> list[Enclosure]:
    found = []
    for attachment in value if isinstance(value, list) else []:
        if isinstance(attachment, dict) and (url := _url(attachment.get("url"), base)):
            size = attachment.get("size_in_bytes")
            found.append(Enclosure(url, _str(attachment.get("mime_type")),
                                   size if isinstance(size, int) and size >= 0 else None))
    return found


def _cited(external_url: object, base: str) -> list[ParsedLink]:
    # JSON Feed's external_url: "the URL of a page elsewhere", e.g. the story a link post cites.
    url = _url(external_url, base)
    return [ParsedLink(url)] if url else []


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _url(value: object, base: str) -> str | None:
    text = _str(value)
    return urljoin(base, text) if text else None


def _str(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
