"""Small builders of records for tests of pure logic and of the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from syndicate.types import Entry, SourceRef

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_entry(source_id: str = "alpha", guid: str = "g1", **changes: Any) -> Entry:
    entry = Entry(
        source_id=source_id, guid=guid, link=f"https://news.example/{guid}",
        title=f"Title {guid}", summary_html="<p>summary</p>", content_html="<p>content</p>",
        text="content", published=T0, updated=T0, authors=(), categories=(), enclosures=(),
        language="en", cited=(), place=None, content_hash=None)
    return replace(entry, **changes)


def ref(host: str, name: str | None = None, url: str | None = None) -> SourceRef:
    return SourceRef(host=host, name=name or host, url=url)


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
