"""The lxml fast path gives what the feedparser adapter gives, or refuses.

The oracle is ``parse.parse_feed`` itself: on every corpus file the fast path accepts, the
normalized entries must be equal. The only difference allowed is the one the fast path is
for: it hands over raw HTML where feedparser re-serialized it, and nh3 (in normalize) keeps
attributes in the document's order where feedparser had sorted them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syndicate.ingest.fastparse import parse_fast
from syndicate.ingest.normalize import normalize_entry
from syndicate.ingest.parse import parse_feed
from syndicate.types import Enclosure, Entry, ParsedEntry, ParsedFeed, ParsedLink, SourceConfig

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
REAL_WORLD = ["miniflux-v2", "feed-rs", "lemon24-reader",
              "kurtmckee-feedparser/tests/wellformed/rss",
              "kurtmckee-feedparser/tests/wellformed/atom10"]
SOURCE = SourceConfig(id="s", url="https://x.example/feed", title=None, tags=(), language=None,
                      interval=timedelta(hours=1))
NOW = datetime(2026, 1, 1, tzinfo=UTC)

# Entries whose normalized HTML differs for a reason that is feedparser's, not ours:
# (corpus path, field) → why.
KNOWN_DIFFERENCES = {
    ("feed-rs/feed-rs/fixture/rss2/rss_2.0_ghost_2.xml", "summary_html"):
        "<img alt>: feedparser's SGML parser makes it alt=\"alt\", HTML5 (nh3) alt=\"\"",
    ("feed-rs/feed-rs/fixture/rss2/rss_2.0_ghost_2.xml", "content_html"):
        "<img alt>: feedparser's SGML parser makes it alt=\"alt\", HTML5 (nh3) alt=\"\"",
}

_TAG = re.compile(r'<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>]+="[^"]*")*)\s*(/?)>')
_ATTRIBUTE = re.compile(r'[^\s=>]+="[^"]*"')


def sorted_attributes(html: str) -> str:
    """nh3 output with each tag's attributes in name order, as feedparser had put them."""
    def sort(match: re.Match[str]) -> str:
        attributes = sorted(_ATTRIBUTE.findall(match.group(2)))
        return "<" + match.group(1) + "".join(" " + a for a in attributes) + match.group(3) + ">"
    return _TAG.sub(sort, html)


def comparable(entry: Entry) -> Entry:
    return replace(entry, summary_html=sorted_attributes(entry.summary_html),
                   content_html=sorted_attributes(entry.content_html))


def without_html(entry: ParsedEntry) -> ParsedEntry:
    return replace(entry, summary_html=None, content_html=None)


def differences(name: str, url: str, fast: ParsedFeed, slow: ParsedFeed) -> list[str]:
    """Every field where the fast path's result differs from parse_feed's, as messages;
    ``name`` is the corpus path that KNOWN_DIFFERENCES are listed under."""
    found = [f"feed {name}: {getattr(fast, name)!r} != {getattr(slow, name)!r}"
             for name in ("title", "link", "language", "ttl_minutes", "warning")
             if getattr(fast, name) != getattr(slow, name)]
    if len(fast.entries) != len(slow.entries):
        return [*found, f"{len(fast.entries)} entries != {len(slow.entries)}"]
    for index, (ours, theirs) in enumerate(zip(fast.entries, slow.entries, strict=True)):
        if without_html(ours) != without_html(theirs):  # everything but HTML, before normalize
            found.append(f"entry {index}: {without_html(ours)} != {without_html(theirs)}")
        mine = comparable(normalize_entry(ours, fast, SOURCE, url, NOW))
        other = comparable(normalize_entry(theirs, slow, SOURCE, url, NOW))
        for field in fields(Entry):
            if getattr(mine, field.name) != getattr(other, field.name) and (
                    (name, field.name) not in KNOWN_DIFFERENCES):
                found.append(f"entry {index} {field.name}: {getattr(mine, field.name)!r} != "
                             f"{getattr(other, field.name)!r}")
    return found


def check_equivalence(paths: list[Path]) -> tuple[int, dict[str, list[str]]]:
    """(files accepted, differences by file) over ``paths``."""
    accepted = 0
    problems: dict[str, list[str]] = {}
    for path in paths:
        url = f"https://corpus.example/feeds/{path.name}"
        content = path.read_bytes()
        fast = parse_fast(content, url)
        if fast is None:
            continue
        accepted += 1
        name = path.relative_to(CORPUS).as_posix() if path.is_relative_to(CORPUS) else path.name
        found = differences(name, url, fast, parse_feed(content, url))
        if found:
            problems[str(path)] = found[:3]
    return accepted, problems


@pytest.fixture(scope="module")
def generated_feeds(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """100 feeds of the benchmark corpus generator (its own seed, so no /tmp/corpus needed)."""
    out = tmp_path_factory.mktemp("corpus")
    generator = SHARED / "bench" / "gen_corpus.py"
    subprocess.run([sys.executable, str(generator), "--out", str(out), "--n", "100",
                    "--seed", "7"], check=True, capture_output=True)
    return sorted((out / "feeds").glob("*.xml"))


def test_generated_corpus_is_read_as_feedparser_reads_it(generated_feeds: list[Path]) -> None:
    assert len(generated_feeds) == 100
    accepted, problems = check_equivalence(generated_feeds)
    assert problems == {}
    # The corpus is what production looks like: the fast path must really be the one used.
    assert accepted >= 0.95 * len(generated_feeds)


@pytest.mark.parametrize("folder", REAL_WORLD)
def test_real_world_corpus_is_read_as_feedparser_reads_it(folder: str) -> None:
    paths = sorted(p for p in (CORPUS / folder).rglob("*") if p.is_file())
    assert paths, f"the shared corpus is missing at {CORPUS / folder}"
    accepted, problems = check_equivalence(paths)
    assert problems == {}
    assert accepted > 0  # the check above would pass vacuously otherwise


# --- what feedparser does that the fast path reproduces ------------------------------------------

RSS_HEAD = (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            b'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            b'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            b'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>T</title>'
            b"<link>https://site.example/</link>")
RSS_TAIL = b"</channel></rss>"
ATOM_HEAD = (b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
             b'xml:lang="de_DE"><title>A</title><id>urn:feed</id>')
ATOM_TAIL = b"</feed>"


def rss(item: bytes) -> bytes:
    return RSS_HEAD + b"<item>" + item + b"</item>" + RSS_TAIL


def atom(entry: bytes) -> bytes:
    return ATOM_HEAD + b"<entry>" + entry + b"</entry>" + ATOM_TAIL


# (what, document, the expected value of one entry field): each is also checked against
# parse_feed, so the expectation documents feedparser's behaviour, not a wish.
QUIRKS = [
    ("a permalink guid stands in for a missing link",
     rss(b"<guid>https://site.example/a</guid><title>x</title>"),
     "link", "https://site.example/a"),
    ("a guid that is not a permalink does not",
     rss(b'<guid isPermaLink="false">https://site.example/a</guid><title>x</title>'),
     "link", None),
    ("a relative link stays as written (normalize resolves it)",
     rss(b"<guid>g</guid><link>/a?x=1&amp;amp;y=2</link>"), "link", "/a?x=1&y=2"),
    ("an itunes:summary after the description becomes the content",
     rss(b"<guid>g</guid><description>short</description><itunes:summary>long</itunes:summary>"),
     "content_html", "long"),
    ("content:encoded is the content, the description the summary",
     rss(b"<guid>g</guid><description>d</description>"
         b"<content:encoded><![CDATA[<p>c</p>]]></content:encoded>"),
     "summary_html", "d"),
    ("a description repeating the content is dropped",
     rss(b"<guid>g</guid><content:encoded>same</content:encoded><description>same</description>"),
     "summary_html", None),
    ("an author string loses its e-mail address, with feedparser's pattern",
     rss(b"<guid>g</guid><author>jane@news.example (Jane Doe)</author>"),
     "authors", ("ple (Jane Doe",)),
    ("categories: the same term twice only if its domain differs",
     rss(b"<guid>g</guid><category>A</category><category>A</category>"
         b'<category domain="x">A</category><category domain="x">B</category>'),
     "categories", ("A", "A", "B")),
    ("ISO-8859-1 C1 bytes mean windows-1252 quotes",
     RSS_HEAD.replace(b"utf-8", b"iso-8859-1")
     + b"<item><guid>g</guid><title>\x93quoted\x94</title></item>" + RSS_TAIL,
     "title", "\u201cquoted\u201d"),
    ("UTF-8 read as ISO-8859-1 is repaired",
     rss("<guid>g</guid><category>cafÃ©</category>".encode()), "categories", ("café",)),
    ("the first title wins",
     rss(b"<guid>g</guid><title>first</title><title>second</title>"), "title", "first"),
    ("RFC 822 date with a named zone, through feedparser's own parser",
     rss(b"<guid>g</guid><pubDate>Sat, 01 Jun 2024 12:00:00 EST</pubDate>"),
     "published", datetime(2024, 6, 1, 17, 0, tzinfo=UTC)),
    ("RFC 822 date with an offset",
     rss(b"<guid>g</guid><pubDate>Sat, 01 Jun 2024 12:00:00 +0200</pubDate>"),
     "published", datetime(2024, 6, 1, 10, 0, tzinfo=UTC)),
    ("dc:date is the updated date", rss(b"<guid>g</guid><dc:date>2024-06-01T12:00:00Z</dc:date>"),
     "updated", datetime(2024, 6, 1, 12, 0, tzinfo=UTC)),
    ("RSS source and dc:source are cited",
     rss(b'<guid>g</guid><source url="https://origin.example/rss">Origin</source>'
         b"<dc:source>Reuters</dc:source>"),
     "cited", (ParsedLink("https://origin.example/rss", "Origin"), ParsedLink(None, "Reuters"))),
    ("an enclosure, its type lower-cased",
     rss(b'<guid>g</guid><enclosure url="https://site.example/a.mp3" type="Audio/MPEG" '
         b'length="12"/>'),
     "enclosures", (Enclosure("https://site.example/a.mp3", "audio/mpeg", 12),)),
    ("Atom: xml:lang of the feed is the content's language",
     atom(b"<id>urn:e</id><content>c</content>"), "language", "de-DE"),
    ("Atom: the id stands in for the link",
     atom(b"<id>https://site.example/e</id><title>t</title>"), "link", "https://site.example/e"),
    ("Atom: text content is handed over as text, unescaped, like feedparser",
     atom(b'<id>urn:e</id><content type="text">a &lt;b&gt; c</content>'),
     "content_html", "a <b> c"),
    ("Atom: xhtml content is the markup inside the div",
     atom(b'<id>urn:e</id><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
          b"<p>one<br/>two</p></div></content>"),
     "content_html", "<p>one<br>two</p>"),
    ("Atom: rel=enclosure links, with feedparser's default type",
     atom(b'<id>urn:e</id><link rel="enclosure" href="https://site.example/a.mp3"/>'),
     "enclosures", (Enclosure("https://site.example/a.mp3", "text/html"),)),
    ("Atom: source and rel=via are cited",
     atom(b'<id>urn:e</id><link rel="via" href="https://via.example/"/><source><id>urn:s</id>'
          b'<title>Src</title><link href="https://src.example/"/></source>'),
     "cited", (ParsedLink("https://src.example/", "Src"), ParsedLink("https://via.example/"))),
    ("Atom: authors' names, with the e-mail only one inheriting the previous name",
     atom(b"<id>urn:e</id><author><name>A</name></author><author><email>b@x.org</email></author>"),
     "authors", ("A", "A")),
    ("WordPress's unknown default namespace is read as plain elements",
     rss(b'<guid>g</guid><title>x</title><post-id xmlns="com-wordpress:feed-additions:1">7'
         b"</post-id>"), "title", "x"),
]


@pytest.mark.parametrize(("document", "field", "expected"),
                         [q[1:] for q in QUIRKS], ids=[q[0] for q in QUIRKS])
def test_feedparser_quirks_are_reproduced(document: bytes, field: str, expected: object) -> None:
    url = "https://site.example/feed.xml"
    fast = parse_fast(document, url)
    assert fast is not None
    (entry,) = fast.entries
    assert getattr(entry, field) == expected
    assert differences("", url, fast, parse_feed(document, url)) == []  # the oracle agrees


def test_feed_fields() -> None:
    body = RSS_HEAD.replace(b"<channel>", b"<channel><language>de-de</language><ttl>45</ttl>")
    feed = parse_fast(body + b"<item><guid>g</guid></item>" + RSS_TAIL, "https://x.example/")
    assert feed is not None
    assert (feed.title, feed.link, feed.language, feed.ttl_minutes, feed.warning) == (
        "T", "https://site.example/", "de-de", 45, None)


def test_raw_html_is_handed_over_for_normalize_to_sanitize() -> None:
    document = rss(b"<guid>g</guid><description><![CDATA[<p onclick='x()'>hi</p>"
                   b"<script>evil()</script>]]></description>")
    fast = parse_fast(document, "https://site.example/")
    assert fast is not None
    assert fast.entries[0].summary_html == "<p onclick='x()'>hi</p><script>evil()</script>"
    entry = normalize_entry(fast.entries[0], fast, SOURCE, "https://site.example/", NOW)
    assert entry.summary_html == "<p>hi</p>"


# --- what the fast path leaves to feedparser ------------------------------------------------------

# Ten levels of ten: &j; would expand to 10**10 characters.
LAUGHS = [b'<!ENTITY %c "%s">' % (98 + i, b"&%c;" % (97 + i) * 10) for i in range(9)]
BILLION_LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "aaaaaaaaaa">\n'
                  + b"\n".join(LAUGHS)
                  + b']>\n<rss version="2.0"><channel><title>&j;</title></channel></rss>')

REFUSED = [
    ("billion laughs", BILLION_LAUGHS),
    ("external entity", b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY x SYSTEM '
                        b'"file:///etc/passwd">]>\n<rss version="2.0"><channel><title>&x;'
                        b"</title></channel></rss>"),
    ("a doctype alone", b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
                        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
                        b'<rss version="0.91"><channel><title>t</title></channel></rss>'),
    ("not well-formed", rss(b"<guid>g</guid><title>a & b</title>")),
    ("undeclared prefix", rss(b"<guid>g</guid><foo:bar>x</foo:bar>")),
    ("truncated", rss(b"<guid>g</guid>")[:-20]),
    ("RSS 1.0", b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
                b'syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>t'
                b'</title></channel><item rdf:about="i"><title>i</title></item></rdf:RDF>'),
    ("Atom 0.3", b'<?xml version="1.0"?><feed version="0.3" xmlns="http://purl.org/atom/ns#">'
                 b"<title>t</title><entry><id>e</id></entry></feed>"),
    ("RSS without version 2.0", RSS_HEAD.replace(b'version="2.0"', b'version="3.0"') + RSS_TAIL),
    ("xml:base", atom(b'<id>urn:e</id><link href="a" xml:base="https://other.example/"/>')),
    ("base64 content", atom(b'<id>urn:e</id><content type="application/octet-stream">aGk='
                            b"</content>")),
    ("out-of-line content", atom(b'<id>urn:e</id><content src="https://x.example/c"/>')),
    ("markup inside a text element", rss(b"<guid>g</guid><title>a <b>b</b></title>")),
    ("xhtml content that is not one div",
     atom(b'<id>urn:e</id><content type="xhtml"><p xmlns="http://www.w3.org/1999/xhtml">x</p>'
          b"</content>")),
    ("an entry with neither guid nor link (normalize hashes its HTML)",
     rss(b"<title>t</title><description>d</description>")),
    ("koi8-r", RSS_HEAD.replace(b"utf-8", b"koi8-r") + "<item><guid>ж</guid></item>".encode(
        "koi8-r") + RSS_TAIL),
    ("no declaration, Latin-1 bytes", b'<rss version="2.0"><channel><title>caf\xe9</title>'
                                      b"</channel></rss>"),
    ("JSON Feed", b'{"version": "https://jsonfeed.org/version/1.1", "items": []}'),
]


@pytest.mark.parametrize("document", [r[1] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(document: bytes) -> None:
    started = time.perf_counter()
    assert parse_fast(document, "https://site.example/feed.xml") is None
    assert time.perf_counter() - started < 0.5  # nothing is expanded or fetched


@pytest.mark.parametrize(("content_type", "accepted"), [
    (None, True),
    ("application/rss+xml", True),
    ("text/xml; charset=utf-8", True),
    ("text/xml", True),  # us-ascii fails on these bytes, and feedparser tries the declared one
    ("text/html; charset=utf-8", True),  # with feedparser's complaint as the warning
    ("application/octet-stream", True),
    # RFC 3023: the HTTP charset wins over the XML declaration, and feedparser follows it.
    ("application/xml; charset=iso-8859-1", False),
    ("text/html; charset=windows-1251", False),
])
def test_the_content_type_charset_is_weighed_as_feedparser_does(
        content_type: str | None, accepted: bool) -> None:
    document = RSS_HEAD + "<item><guid>café</guid><title>Zürich</title></item>".encode() + RSS_TAIL
    url = "https://site.example/feed.xml"
    fast = parse_fast(document, url, content_type)
    assert (fast is not None) == accepted
    if fast is not None:  # warnings included
        assert differences("", url, fast, parse_feed(document, url, content_type)) == []
