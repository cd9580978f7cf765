"""feedparser adapter: every real-world corpus file gives a ParsedFeed or a ParseError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syndicate.errors import ParseError
from syndicate.ingest.parse import parse_feed
from syndicate.types import ParsedFeed, ParsedLink

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FEED_SUFFIXES = {".xml", ".rss", ".atom", ".rdf", ".json"}


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*")
                  if p.suffix in FEED_SUFFIXES and not p.name.endswith(".serde.json"))


def test_every_corpus_feed_parses_or_fails_cleanly() -> None:
    files = corpus_files()
    assert len(files) > 3000, f"the shared corpus is missing at {CORPUS}"
    parsed = failed = 0
    for path in files:
        try:
            feed = parse_feed(path.read_bytes(), "https://corpus.example/" + path.name)
        except ParseError as e:
            assert str(e)  # an operator-readable message
            failed += 1
            continue
        parsed += 1
        for entry in feed.entries:
            for when in (entry.published, entry.updated):
                assert when is None or when.tzinfo is UTC
    assert parsed > 0.9 * len(files), (parsed, failed)


RSS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>T</title><link>https://site.example/</link><language>de-de</language><ttl>45</ttl>
<item><title>A</title><link>/a</link><guid isPermaLink="false">g-a</guid>
<pubDate>Mon, 23 Nov 2026 08:00:00 +0100</pubDate>
<source url="https://origin.example/feed">Origin</source><dc:source>Reuters</dc:source>
<category>One</category><category>Two</category>
<enclosure url="https://site.example/a.mp3" type="audio/mpeg" length="1234"/>
<description>short</description><content:encoded><![CDATA[<p>long</p>]]></content:encoded>
</item></channel></rss>"""


def test_rss_fields() -> None:
    feed = parse_feed(RSS, "https://site.example/feed.xml")
    assert (feed.title, feed.link, feed.language, feed.ttl_minutes) == (
        "T", "https://site.example/", "de-de", 45)
    (entry,) = feed.entries
    assert entry.guid == "g-a"
    assert entry.link == "/a"  # as written: normalize resolves it against the document URL
    assert entry.published == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert entry.categories == ("One", "Two")
    assert entry.enclosures[0].url == "https://site.example/a.mp3"
    assert entry.enclosures[0].length == 1234
    assert entry.summary_html == "short"
    assert entry.content_html == "<p>long</p>"
    assert entry.cited == (ParsedLink("https://origin.example/feed", "Origin"),
                           ParsedLink(None, "Reuters"))


def test_atom_via_links_are_cited() -> None:
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><id>urn:x</id>
    <updated>2026-01-01T00:00:00Z</updated><entry><id>urn:e</id><title>t</title>
    <updated>2026-01-01T00:00:00Z</updated><link rel="via" href="https://via.example/s"/>
    </entry></feed>"""
    (entry,) = parse_feed(atom, "https://x.example/").entries
    assert entry.cited == (ParsedLink("https://via.example/s", None),)


def test_json_feed() -> None:
    body = (CORPUS / "lemon24-reader/tests/data/full.json").read_bytes()
    feed = parse_feed(body, "https://x.example/feed.json")
    assert feed.entries and feed.title


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"<!DOCTYPE html><html><head><title>Home</title></head><body>hi</body></html>",
     "HTML page"),
    (b"\x00\x01\x02garbage", "not an RSS, Atom or JSON feed"),
    (b'{"not": "a feed"}', "not an RSS, Atom or JSON feed"),
])
def test_not_a_feed(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(body, "https://x.example/")


def test_broken_feed_keeps_what_parses() -> None:
    broken = RSS.replace(b"</channel></rss>", b"<item><title>B & broken</title></item>")
    feed = parse_feed(broken, "https://site.example/feed.xml")
    assert feed.warning and "not well-formed" in feed.warning
    assert feed.entries[0].guid == "g-a"


def test_json_feed_items() -> None:
    body = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "J",
      "home_page_url": "https://j.example/", "feed_url": "https://j.example/feed.json",
      "items": [{"id": 7, "url": "/p/7", "title": "Seven", "content_text": "a < b",
                 "date_published": "2026-11-23T08:00:00+01:00", "tags": ["x", 3],
                 "external_url": "https://cited.example/story",
                 "attachments": [{"url": "https://j.example/a.mp3", "mime_type": "audio/mpeg",
                                  "size_in_bytes": 10}]},
                {"title": "no id"}, "not an object"]}"""
    feed = parse_json_feed_via_parse(body)
    assert (feed.title, feed.link) == ("J", "https://j.example/")
    first, second = feed.entries
    assert (first.guid, first.link, first.title) == ("7", "https://j.example/p/7", "Seven")
    assert first.content_html == "<p>a &lt; b</p>"
    assert first.published == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert first.categories == ("x",)
    assert first.cited == (ParsedLink("https://cited.example/story"),)
    assert first.enclosures[0].length == 10
    assert second.guid is None


def parse_json_feed_via_parse(body: bytes) -> ParsedFeed:
    return parse_feed(body, "https://j.example/feed.json", "application/feed+json")


def test_corpus_json_feeds_have_items() -> None:
    for path in (CORPUS / "feed-rs/feed-rs/fixture/jsonfeed").glob("*.json"):
        if path.name.endswith(".serde.json"):
            continue
        assert parse_feed(path.read_bytes(), "https://x.example/").entries, path


def test_a_permalink_guid_is_kept_as_the_feed_wrote_it() -> None:
    body = RSS.replace(b'<guid isPermaLink="false">g-a</guid>', b"<guid>12345</guid>")
    (entry,) = parse_feed(body, "https://site.example/feed.xml").entries
    assert entry.guid == "12345"  # not https://site.example/12345: identity must not move


def test_deeply_nested_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_feed(b'{"version": "https://jsonfeed.org/version/1.1", "items": '
                   + b"[" * 100_000 + b"]" * 100_000 + b"}", "https://x.example/")
