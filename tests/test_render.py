"""Rendering output feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1, read back by real parsers.

RSS and Atom are read back with feedparser (the library readers use) and lxml (for our namespaced
extension, which feedparser flattens); JSON Feed with json plus the 1.1 rules it must meet
(feedparser 6.0 has no JSON Feed support).
"""

from __future__ import annotations

import calendar
import json
import re
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import feedparser
import lxml.html
import pytest
from lxml import etree

from syndicate.publish.render import (
    CONTENT_TYPES,
    EXTENSIONS,
    SOURCES_NS,
    feed_url,
    render,
    sources_footer_html,
)
from syndicate.types import Enclosure, FeedConfig, ServiceConfig, Story, StorySource

ATOM = "http://www.w3.org/2005/Atom"
FORMATS = ("rss", "atom", "json")
XML_FORMATS = ("rss", "atom")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

SERVICE = ServiceConfig(
    base_url="https://news.example.org",
    database="sqlite://",
    listen_host="127.0.0.1",
    listen_port=8080,
    user_agent="syndicate-test",
    data_dir=Path("/nonexistent"),
)
SERVICE_WITH_HUB = replace(SERVICE, websub_hub="https://hub.example.org/")
FEED_DE = FeedConfig(id="welt", title="Weltnachrichten", description="Alles", language="de")
FEED_EN = FeedConfig(id="world", title="World news", description="Everything", language="en")

HOSTILE_NAME = "<script>alert(1)</script>"
SOURCES = (
    StorySource("www.npr.org", "NPR", "https://www.npr.org/2024/05/01/sumy", True),
    StorySource("rp-online.de", "RP Online", "https://rp-online.de/politik/sumy", True),
    StorySource("www.reuters.com", "Reuters", None, False),
    StorySource("evil.example", HOSTILE_NAME, "javascript:alert(1)", False),
)
# (host, name, url, carried) as every machine-readable list must give them, in order.
EXPECTED_OUTLETS = [
    ("www.npr.org", "NPR", "https://www.npr.org/2024/05/01/sumy", True),
    ("rp-online.de", "RP Online", "https://rp-online.de/politik/sumy", True),
    ("www.reuters.com", "Reuters", None, False),
    ("evil.example", HOSTILE_NAME, None, False),
]
# Atom rel="via": an outlet's URL, else its home page; a javascript: URL never.
EXPECTED_VIA = [
    ("https://www.npr.org/2024/05/01/sumy", "NPR"),
    ("https://rp-online.de/politik/sumy", "RP Online"),
    ("https://www.reuters.com/", "Reuters"),
    ("https://evil.example/", HOSTILE_NAME),
]
FOOTER_HREFS = ["https://www.npr.org/2024/05/01/sumy", "https://rp-online.de/politik/sumy"]


def make_story(number: int, **changes: Any) -> Story:
    published = NOW - timedelta(hours=number)
    story = Story(
        id=number,
        guid=f"urn:uuid:6f1c2a4e-0000-4000-8000-{number:012d}",
        title=f"Explosions in Sumy, report {number}",
        link=f"https://www.npr.org/2024/05/01/sumy-{number}",
        summary_html="<p>Short summary.</p>",
        content_html=f"<p>Full text of report {number}.</p>",
        text=f"Full text of report {number}.",
        published=published,
        updated=published + timedelta(minutes=30),
        first_seen=published,
        language="en",
        place="Sumy, Ukraine",
        authors=("Jane Doe",),
        categories=("world", "ukraine"),
        enclosures=(
            Enclosure("https://media.example.org/sumy.mp3", "audio/mpeg", 123456),
            Enclosure("https://media.example.org/sumy.jpg", None, None),
        ),
        sources=SOURCES,
    )
    return replace(story, **changes)


STORIES = [make_story(n) for n in range(3)]


def rendered(
    fmt: str,
    stories: list[Story] | None = None,
    feed: FeedConfig = FEED_EN,
    service: ServiceConfig = SERVICE,
) -> bytes:
    return render(feed, STORIES if stories is None else stories, fmt, service=service, updated=NOW)


def parsed(fmt: str, body: bytes) -> Any:
    """feedparser's result for XML formats, the decoded JSON document for JSON Feed."""
    if fmt == "json":
        return json.loads(body.decode("utf-8"))
    result = feedparser.parse(body)
    assert not result.bozo, result.get("bozo_exception")
    return result


def entries(fmt: str, body: bytes) -> list[dict[str, Any]]:
    """Per entry: id, title, link, content HTML, published/updated as aware datetimes."""
    doc = parsed(fmt, body)
    if fmt == "json":
        return [
            {
                "id": item["id"],
                "title": item["title"],
                "link": item.get("url"),
                "content": item["content_html"],
                "published": datetime.fromisoformat(item["date_published"]),
                "updated": datetime.fromisoformat(item["date_modified"]),
            }
            for item in doc["items"]
        ]
    return [
        {
            "id": e.id,
            "title": e.title,
            "link": next((x.href for x in e.get("links", []) if x.rel == "alternate"), None),
            # RSS: feedgen puts the content in <description> when there is no summary.
            "content": e.content[0].value if "content" in e else e.summary,
            "published": from_struct_time(e.published_parsed),
            # RSS 2.0 has no item update date; feedparser then has none either.
            "updated": from_struct_time(e.updated_parsed) if fmt == "atom" else None,
        }
        for e in doc.entries
    ]


def from_struct_time(value: time.struct_time) -> datetime:
    """feedparser's UTC struct_time as an aware datetime."""
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


def xml_items(fmt: str, body: bytes) -> list[Any]:
    root = etree.fromstring(body)
    path = "channel/item" if fmt == "rss" else f"{{{ATOM}}}entry"
    return list(root.findall(path))


def extension_outlets(fmt: str, body: bytes) -> list[list[tuple[str, str, str | None, bool]]]:
    """The source list of every entry as our extension gives it."""
    if fmt == "json":
        return [
            [(s["host"], s["name"], s["url"], s["carried"]) for s in item["_syndicate"]["sources"]]
            for item in parsed(fmt, body)["items"]
        ]
    return [
        [
            (o.get("host"), o.text, o.get("url"), o.get("carried") == "true")
            for o in item.findall(f"{{{SOURCES_NS}}}sources/{{{SOURCES_NS}}}outlet")
        ]
        for item in xml_items(fmt, body)
    ]


# --- reading back -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_story_reads_back_once_in_order(fmt: str) -> None:
    got = entries(fmt, rendered(fmt))

    assert [e["id"] for e in got] == [s.guid for s in STORIES]
    assert [e["title"] for e in got] == [s.title for s in STORIES]
    assert [e["link"] for e in got] == [s.link for s in STORIES]
    assert [e["published"] for e in got] == [s.published for s in STORIES]
    if fmt != "rss":
        assert [e["updated"] for e in got] == [s.updated for s in STORIES]


@pytest.mark.parametrize("fmt", FORMATS)
def test_feed_head_has_title_links_language_and_generator(fmt: str) -> None:
    body = rendered(fmt, feed=FEED_DE)
    if fmt == "json":
        doc = parsed(fmt, body)
        assert doc["version"] == "https://jsonfeed.org/version/1.1"
        assert (doc["title"], doc["description"]) == ("Weltnachrichten", "Alles")
        assert doc["home_page_url"] == "https://news.example.org/"
        assert doc["feed_url"] == "https://news.example.org/feeds/welt.json"
        assert doc["language"] == "de"
        assert "hubs" not in doc
        return
    feed = parsed(fmt, body).feed
    assert feed.title == "Weltnachrichten"
    assert feed.subtitle == "Alles"
    assert feed.language == "de"
    assert feed.generator.startswith("syndicate")
    links = {link.rel: link.href for link in feed.links}
    assert links == {
        "self": f"https://news.example.org/feeds/welt.{fmt}",
        "alternate": "https://news.example.org/",
    }
    assert feed.updated_parsed[:6] == NOW.timetuple()[:6]
    if fmt == "atom":
        assert feed.id == "https://news.example.org/feeds/welt.atom"
        assert feed.author == "Weltnachrichten"  # Atom §4.1.1: a feed author covers the entries


@pytest.mark.parametrize("fmt", FORMATS)
def test_websub_hub_is_advertised_when_configured(fmt: str) -> None:
    body = rendered(fmt, service=SERVICE_WITH_HUB)
    if fmt == "json":
        assert parsed(fmt, body)["hubs"] == [{"type": "WebSub", "url": "https://hub.example.org/"}]
    else:
        hubs = [link.href for link in parsed(fmt, body).feed.links if link.rel == "hub"]
        assert hubs == ["https://hub.example.org/"]


# --- the source list ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_extension_lists_every_outlet_in_order_with_carried_flags(fmt: str) -> None:
    assert extension_outlets(fmt, rendered(fmt)) == [EXPECTED_OUTLETS] * len(STORIES)


@pytest.mark.parametrize("fmt", FORMATS)
def test_extension_carries_the_place(fmt: str) -> None:
    body = rendered(fmt, [make_story(0), make_story(1, place=None)])
    if fmt == "json":
        places = [item["_syndicate"]["place"] for item in parsed(fmt, body)["items"]]
    else:
        places = [item.findtext(f"{{{SOURCES_NS}}}place") for item in xml_items(fmt, body)]
    assert places == ["Sumy, Ukraine", None]


def test_json_extension_names_its_documentation() -> None:
    item = parsed("json", rendered("json"))["items"][0]
    assert item["_syndicate"]["about"] == SOURCES_NS


def test_atom_via_links_name_every_outlet_with_a_usable_url() -> None:
    for entry in parsed("atom", rendered("atom")).entries:
        via = [(link.href, link.title) for link in entry.links if link.rel == "via"]
        assert via == EXPECTED_VIA


def test_atom_source_is_the_first_carried_outlet() -> None:
    cited_first = (SOURCES[2], SOURCES[1], SOURCES[0])
    stories = [make_story(0), make_story(1, sources=cited_first)]
    body = rendered("atom", stories)
    sources = [entry.source for entry in parsed("atom", body).entries]
    # RFC 4287 §4.2.11 recommends id, title and updated: the outlet's home page names it.
    assert [(s.id, s.title, s.link, s.updated) for s in sources] == [
        ("https://www.npr.org/", "NPR", "https://www.npr.org/2024/05/01/sumy",
         _rfc3339(stories[0].updated)),
        ("https://rp-online.de/", "RP Online", "https://rp-online.de/politik/sumy",
         _rfc3339(stories[1].updated)),
    ]


def test_atom_source_id_comes_from_the_url_when_the_host_is_unusable() -> None:
    outlets = (StorySource("", "Wire", "https://Wire.Example.com/a/1", True),)
    source = parsed("atom", rendered("atom", [make_story(0, sources=outlets)])).entries[0].source
    assert (source.id, source.link) == ("https://wire.example.com/", "https://Wire.Example.com/a/1")
    nameless = (StorySource("", "Wire", None, True),)  # nothing names it: no atom:source
    assert b"<source>" not in rendered("atom", [make_story(0, sources=nameless)])


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_rss_has_one_core_source_the_first_carried_outlet() -> None:
    cited_first = (SOURCES[2], SOURCES[1], SOURCES[0])
    only_cited = (SOURCES[2], SOURCES[3])
    body = rendered("rss", [make_story(0), make_story(1, sources=cited_first),
                            make_story(2, sources=only_cited)])
    sources = [[(s.get("url"), s.text) for s in item.findall("source")]
               for item in xml_items("rss", body)]
    assert sources == [
        [("https://www.npr.org/2024/05/01/sumy", "NPR")],
        [("https://rp-online.de/politik/sumy", "RP Online")],
        [],  # no outlet carried it: RSS <source> names the feed an item came from
    ]


def test_story_without_sources_has_no_source_markup() -> None:
    story = make_story(0, sources=(), place=None)
    for fmt in XML_FORMATS:
        body = rendered(fmt, [story])
        assert b"syn:sources" not in body
        assert b"<source" not in body
        assert b'rel="via"' not in body
    item = parsed("json", rendered("json", [story]))["items"][0]
    assert item["_syndicate"]["sources"] == []
    assert item["content_html"] == "<p>Full text of report 0.</p>"  # no empty footer


# --- the human footer ---------------------------------------------------------------------------

FOOTER_LABELS = [
    # (feed language, sources label, place label)
    ("de", "Quellen", "Ort"),
    ("de-AT", "Quellen", "Ort"),
    ("en", "Sources", "Place"),
    ("fr-CA", "Sources", "Lieu"),
    ("es", "Fuentes", "Lugar"),
    ("it_IT", "Fonti", "Luogo"),
    ("pt", "Sources", "Place"),
    (None, "Sources", "Place"),
]


@pytest.mark.parametrize(("language", "sources_label", "place_label"), FOOTER_LABELS)
def test_footer_labels_follow_the_feed_language(
    language: str | None, sources_label: str, place_label: str
) -> None:
    footer = sources_footer_html(make_story(0), language)
    assert footer == (
        f"<hr/><p><strong>{place_label}:</strong> Sumy, Ukraine</p>"
        f"<p><strong>{sources_label}:</strong> "
        '<a href="https://www.npr.org/2024/05/01/sumy">NPR</a>, '
        '<a href="https://rp-online.de/politik/sumy">RP Online</a>, '
        "Reuters, &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    )


@pytest.mark.parametrize(
    ("place", "sources", "expected"),
    [
        (None, (), ""),
        ("Kyiv", (), "<hr/><p><strong>Place:</strong> Kyiv</p>"),
        (None, (SOURCES[2],), "<hr/><p><strong>Sources:</strong> Reuters</p>"),
        # A nameless outlet shows its host; an outlet with neither is left out.
        (None, (StorySource("ap.org", "", None, False), StorySource("", "", None, False)),
         "<hr/><p><strong>Sources:</strong> ap.org</p>"),
        ("A & B", (StorySource("x.org", "X", 'https://x.org/?a=1&b="2"', True),),
         "<hr/><p><strong>Place:</strong> A &amp; B</p><p><strong>Sources:</strong> "
         '<a href="https://x.org/?a=1&amp;b=%222%22">X</a></p>'),
    ],
)
def test_footer_shapes(place: str | None, sources: tuple[StorySource, ...], expected: str) -> None:
    assert sources_footer_html(make_story(0, place=place, sources=sources), "en") == expected


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("feed", "label"), [(FEED_DE, "Quellen"), (FEED_EN, "Sources")])
def test_content_ends_with_the_footer_in_the_feed_language(
    fmt: str, feed: FeedConfig, label: str
) -> None:
    for entry, story in zip(entries(fmt, rendered(fmt, feed=feed)), STORIES, strict=True):
        assert entry["content"].startswith(story.content_html)
        assert f"<strong>{label}:</strong>" in entry["content"]
        document = lxml.html.fragment_fromstring(entry["content"], create_parent="div")
        hrefs = [a.get("href") for a in document.iter("a")]
        assert hrefs == FOOTER_HREFS


# --- hostile and broken values --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_values_are_escaped_and_never_become_links(fmt: str) -> None:
    story = make_story(
        0,
        link="JavaScript://www.npr.org/%0Aalert(2)",  # has a host: only the scheme tells
        enclosures=(Enclosure("javascript:alert(3)", "audio/mpeg", 1),
                    Enclosure("ftp://media.example.org/x.mp3", "audio/mpeg", 1)),
        sources=SOURCES + (
            StorySource("evil2.example", "Evil", "data:text/html,<b>x</b>", True),
            StorySource("evil3.example", "Evil", "javascript://evil3.example/%0Aalert(4)", True),
        ),
    )
    body = rendered(fmt, [story])

    assert b"javascript:" not in body.lower()
    assert b"data:text" not in body
    assert b"ftp:" not in body
    entry = entries(fmt, body)[0]
    assert entry["link"] is None
    document = lxml.html.fragment_fromstring(entry["content"], create_parent="div")
    assert not list(document.iter("script"))
    assert [a.get("href") for a in document.iter("a")] == FOOTER_HREFS
    assert HOSTILE_NAME in document.text_content()  # shown as text, not lost
    if fmt != "json":
        assert not list(etree.fromstring(body).iter("script", "{*}script"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_characters_illegal_in_xml_are_removed(fmt: str) -> None:
    dirty = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
    dirty += "\ufffe\uffff"
    dirty += "".join(chr(c) for c in range(0x80, 0xA0))  # C1: legal in XML, meaningless in text
    story = make_story(
        0,
        title=f"Clean{dirty} title",
        content_html=f"<p>Body{dirty}</p>",
        summary_html=f"<p>Sum{dirty}</p>",
        text=f"Body{dirty}",
        authors=(f"Jane{dirty} Doe",),
        categories=(f"world{dirty}",),
        place=f"Sumy{dirty}",
        sources=(StorySource("npr.org", f"NPR{dirty}", "https://npr.org/x", True),),
    )
    body = rendered(fmt, [story])

    text = body.decode("utf-8")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x80-\x9f\ufffe\uffff]", text)
    if fmt == "json":
        assert "\\u00" not in text  # json.dumps would have escaped them, not dropped them
    entry = entries(fmt, body)[0]
    assert entry["title"] == "Clean title"
    assert "<p>Body</p>" in entry["content"]
    assert "NPR</a>" in entry["content"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_guids_are_rendered_once_newest_first(fmt: str) -> None:
    stories = [make_story(0), make_story(1, guid=STORIES[0].guid), make_story(2)]
    got = entries(fmt, rendered(fmt, stories))
    assert [e["id"] for e in got] == [STORIES[0].guid, STORIES[2].guid]
    assert got[0]["title"] == STORIES[0].title


def test_guid_that_is_not_an_iri_is_kept_in_rss_and_json_and_wrapped_in_atom() -> None:
    story = make_story(0, guid="npr 42/ü")
    assert entries("rss", rendered("rss", [story]))[0]["id"] == "npr 42/ü"
    assert entries("json", rendered("json", [story]))[0]["id"] == "npr 42/ü"
    atom_ids = [entries("atom", rendered("atom", [story]))[0]["id"] for _ in range(2)]
    # Stable: from the GUID alone, in a namespace that must never change (a new one would give
    # every such entry a new id), so the value itself is pinned here.
    assert atom_ids == ["urn:uuid:248089e3-ead3-5953-8989-5285b8b0bec9"] * 2
    assert uuid.UUID(atom_ids[0].removeprefix("urn:uuid:")).version == 5


@pytest.mark.parametrize(("guid", "kept"), [
    ("urn:uuid:6f1c2a4e-0000-4000-8000-000000000000", True),  # what the store mints
    ("https://www.example.com/a/b?c=d&e=%20#f", True),
    ("http://example.com:8080/~x/", True),
    ("tag:example.com,2024-05:story/42?x#y", True),
    ("tag:jane@example.com,2024:a~b", True),
    ("abc~def", False),  # not an IRI; as a URN, "~" is invalid (RFC 2141)
    ("urn:uuid:not-a-uuid", False),
    ("urn:isbn:0451450523", False),  # a URN, but one we cannot vouch for: it is wrapped too
    ("tag:example.com:nodate", False),
    ("foo:bar", False),  # a scheme IANA has not registered
    ("HTTP://example.com/a", False),  # not in RFC 3986 normal form:
    ("http://Example.com/a", False),
    ("http://example.com", False),
    ("https://example.com:443/a", False),
    ("http://example.com/./a", False),
    ("http://example.com/%7Ea", False),
    ("http://example.com/%c3%bc", False),
    ("http://[2001:db8::1]/a", False),
])
def test_atom_id_keeps_only_valid_normal_iris(guid: str, kept: bool) -> None:
    entry = etree.fromstring(rendered("atom", [make_story(0, guid=guid)])).find(f"{{{ATOM}}}entry")
    atom_id = entry.findtext(f"{{{ATOM}}}id")
    if kept:
        assert atom_id == guid
    else:
        assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                            r"[0-9a-f]{12}", atom_id), atom_id
    rss_guid = etree.fromstring(rendered("rss", [make_story(0, guid=guid)])).findtext(
        "channel/item/guid")
    assert rss_guid == guid  # RSS and JSON keep the GUID as it is


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_title_and_content_still_give_required_elements(fmt: str) -> None:
    story = make_story(0, title="  ", content_html="", summary_html="", text="Only text here.",
                       sources=(), place=None)
    entry = entries(fmt, rendered(fmt, [story]))[0]
    assert entry["title"] == "Only text here."
    assert entry["content"] == "<p>Only text here.</p>"


# --- validity rules -------------------------------------------------------------------------------

RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} "
                    r"(\+0000|GMT)$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def test_rss_dates_are_rfc822_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    story = make_story(0, published=datetime(2024, 5, 1, 14, 0, tzinfo=plus_two))
    root = etree.fromstring(rendered("rss", [story]))
    assert root.findtext("channel/lastBuildDate") == "Wed, 01 May 2024 12:00:00 +0000"
    pub_dates = [item.findtext("pubDate") for item in root.iter("item")]
    assert pub_dates == ["Wed, 01 May 2024 12:00:00 +0000"]
    assert all(RFC822.match(d) for d in pub_dates)


def test_atom_dates_are_rfc3339_and_every_entry_has_id_title_updated() -> None:
    root = etree.fromstring(rendered("atom"))
    assert RFC3339.match(root.findtext(f"{{{ATOM}}}updated"))
    for entry in root.iter(f"{{{ATOM}}}entry"):
        for name in ("id", "title", "updated"):
            assert entry.findtext(f"{{{ATOM}}}{name}").strip(), name
        for name in ("updated", "published"):
            assert RFC3339.match(entry.findtext(f"{{{ATOM}}}{name}")), name


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_xml_is_well_formed_utf8_and_every_url_is_absolute_http(fmt: str) -> None:
    body = rendered(fmt, [make_story(0, title="Übersicht – 東京")], service=SERVICE_WITH_HUB)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(body, etree.XMLParser(recover=False))
    assert "Übersicht – 東京" in body.decode("utf-8")
    urls = [e.get(a) for a in ("href", "url") for e in root.iter() if e.get(a) is not None]
    urls += [e.text for e in root.iter("link") if e.text and e.text.strip()]
    assert urls
    assert all(re.match(r"^https?://[^/\s]+/\S*$", u) for u in urls), urls


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_no_empty_elements(fmt: str) -> None:
    root = etree.fromstring(rendered(fmt))
    empty = [e.tag for e in root.iter()
             if len(e) == 0 and not (e.text or "").strip() and not e.attrib]
    assert empty == []


def test_enclosures_one_in_rss_all_in_atom_and_json() -> None:
    rss_enclosures = [dict(e.attrib) for e in etree.fromstring(rendered("rss")).iter("enclosure")]
    assert rss_enclosures == [
        {"url": "https://media.example.org/sumy.mp3", "length": "123456", "type": "audio/mpeg"}
    ] * len(STORIES)

    atom_entry = etree.fromstring(rendered("atom")).find(f"{{{ATOM}}}entry")
    assert [dict(link.attrib) for link in atom_entry.iter(f"{{{ATOM}}}link")
            if link.get("rel") == "enclosure"] == [
        {"rel": "enclosure", "href": "https://media.example.org/sumy.mp3", "type": "audio/mpeg",
         "length": "123456"},
        {"rel": "enclosure", "href": "https://media.example.org/sumy.jpg"},
    ]

    assert parsed("json", rendered("json"))["items"][0]["attachments"] == [
        {"url": "https://media.example.org/sumy.mp3", "mime_type": "audio/mpeg",
         "size_in_bytes": 123456},
        {"url": "https://media.example.org/sumy.jpg", "mime_type": "application/octet-stream"},
    ]


def test_rss_enclosure_is_the_first_one_the_validator_takes_there() -> None:
    # The validator wants a dotted host without "_" and no user info in <enclosure url>.
    enclosures = (Enclosure("https://media_files.example.org/a.mp3", "audio/mpeg", 1),
                  Enclosure("http://intranet/b.mp3", "audio/mpeg", 2),
                  Enclosure("https://user:pw@media.example.org/c.mp3", "audio/mpeg", 3),
                  Enclosure("https://media.example.org/d.mp3", "audio/mpeg", 4))
    story = make_story(0, enclosures=enclosures)
    rss = [e.get("url") for e in etree.fromstring(rendered("rss", [story])).iter("enclosure")]
    assert rss == ["https://media.example.org/d.mp3"]
    atom_entry = etree.fromstring(rendered("atom", [story])).find(f"{{{ATOM}}}entry")
    atom = [link.get("href") for link in atom_entry.iter(f"{{{ATOM}}}link")
            if link.get("rel") == "enclosure"]
    assert atom == [e.url for e in enclosures]
    json_urls = [a["url"] for a in parsed("json", rendered("json", [story]))["items"][0]
                 ["attachments"]]
    assert json_urls == atom
    only_odd = make_story(0, enclosures=enclosures[:1])
    assert b"<enclosure" not in rendered("rss", [only_odd])


@pytest.mark.parametrize(("link", "expected"), [
    ("https://shop.example.com/s?q[]=a&f[city]=b#x[1]",
     "https://shop.example.com/s?q%5B%5D=a&f%5Bcity%5D=b#x%5B1%5D"),
    ("https://example.com/100%/sure%20thing", "https://example.com/100%25/sure%20thing"),
    ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
    ("http://[2001:db8::1]/story", None),  # an IP-literal host: no link at all
    ("https://[::1]:8443/story", None),
])
@pytest.mark.parametrize("fmt", FORMATS)
def test_links_are_uris_the_validator_takes(fmt: str, link: str, expected: str | None) -> None:
    outlet = StorySource("", "Shop", link, True)
    body = rendered(fmt, [make_story(0, link=link, sources=(outlet,))])
    assert entries(fmt, body)[0]["link"] == expected
    assert extension_outlets(fmt, body)[0][0][2] == expected  # the outlet's URL as well
    if expected is None:
        assert b"2001:db8" not in body and b"[::1]" not in body
        assert extension_outlets(fmt, body)[0][0][1] == "Shop"  # still listed, by name


def test_rss_text_writes_ampersand_and_less_than_as_hex_references() -> None:
    story = make_story(0, title="1&1 <b>bold</b> & more", categories=("A&B",))
    body = rendered("rss", [story])
    assert b"<title>1&#x26;1 &#x3C;b&gt;bold&#x3C;/b&gt; &#x26; more</title>" in body
    assert b"&amp;" not in body and b"&lt;" not in body
    item = etree.fromstring(body).find("channel/item")
    assert item.findtext("title") == "1&1 <b>bold</b> & more"  # the same text, read back
    assert item.findtext("category") == "A&B"
    assert entries("rss", body)[0]["content"] == entries("atom", rendered("atom", [story]))[0][
        "content"]


@pytest.mark.parametrize(("language", "xml_lang"), [
    ("de-at", "de-AT"), ("ger", "de"), ("eng_GB", "en-GB"), ("gsw", "gsw"),
    ("xyz", None), ("yue", None), ("english", None),
])
def test_languages_are_published_as_iso_639_tags(language: str, xml_lang: str | None) -> None:
    entry = etree.fromstring(rendered("atom", [make_story(0, language=language)])).find(
        f"{{{ATOM}}}entry")
    assert entry.get("{http://www.w3.org/XML/1998/namespace}lang") == xml_lang
    feed = replace(FEED_EN, language=language)
    assert etree.fromstring(rendered("rss", [], feed=feed)).findtext("channel/language") == xml_lang
    assert parsed("json", rendered("json", [make_story(0, language=language)]))["items"][0].get(
        "language") == xml_lang


def test_rss_without_a_known_length_or_type_still_has_both_attributes() -> None:
    enclosure = Enclosure("https://media.example.org/x", "not a type", None)
    story = make_story(0, enclosures=(enclosure,))
    element = etree.fromstring(rendered("rss", [story])).find("channel/item/enclosure")
    assert dict(element.attrib) == {
        "url": "https://media.example.org/x", "length": "0", "type": "application/octet-stream"
    }


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_authors_and_categories(fmt: str) -> None:
    story = make_story(0, authors=("Jane Doe", "Max Muster"))
    entry = parsed(fmt, rendered(fmt, [story])).entries[0]
    assert [a.name for a in entry.authors] == ["Jane Doe", "Max Muster"]
    assert [t.term for t in entry.tags] == ["world", "ukraine"]


def test_json_feed_meets_the_1_1_rules() -> None:
    doc = parsed("json", rendered("json", service=SERVICE_WITH_HUB))

    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    assert isinstance(doc["items"], list)
    for item, story in zip(doc["items"], STORIES, strict=True):
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        assert RFC3339.match(item["date_published"]) and RFC3339.match(item["date_modified"])
        assert item["authors"] == [{"name": "Jane Doe"}]
        assert item["tags"] == ["world", "ukraine"]
        assert item["language"] == "en"
        # "summary" is plain text in JSON Feed, not HTML
        assert item["summary"] == story.text
        custom = [k for k in item if k not in JSON_FEED_ITEM_KEYS]
        assert custom == ["_syndicate"]  # extensions must start with "_" (JSON Feed 1.1)


JSON_FEED_ITEM_KEYS = {
    "id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
    "banner_image", "date_published", "date_modified", "authors", "tags", "language",
    "attachments",
}


def test_json_summary_is_shortened_plain_text() -> None:
    story = make_story(0, text="word " * 200)
    summary = parsed("json", rendered("json", [story]))["items"][0]["summary"]
    assert len(summary) <= 300
    assert summary.endswith("word…")


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_story_list_renders_a_valid_feed(fmt: str) -> None:
    body = rendered(fmt, [])
    if fmt == "json":
        doc = parsed(fmt, body)
        assert doc["items"] == []
        assert doc["title"] == "World news"
    else:
        result = parsed(fmt, body)
        assert result.entries == []
        assert result.feed.title == "World news"
        assert result.version == {"rss": "rss20", "atom": "atom10"}[fmt]


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_input_gives_the_same_bytes(fmt: str) -> None:
    # The publisher keeps a feed's ETag when its bytes do not change; feedgen defaults some
    # dates to "now", so every date must come from the input.
    first = rendered(fmt, service=SERVICE_WITH_HUB)
    time.sleep(0.002)
    assert rendered(fmt, service=SERVICE_WITH_HUB) == first


# --- URLs, formats, speed -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "feed_id", "fmt", "expected"),
    [
        ("https://news.example.org", "world", "rss", "https://news.example.org/feeds/world.rss"),
        ("https://news.example.org/", "world", "atom", "https://news.example.org/feeds/world.atom"),
        ("http://127.0.0.1:8080/sub", "a b", "json", "http://127.0.0.1:8080/sub/feeds/a%20b.json"),
    ],
)
def test_feed_url(base_url: str, feed_id: str, fmt: str, expected: str) -> None:
    assert feed_url(replace(SERVICE, base_url=base_url), feed_id, fmt) == expected


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown feed format"):
        feed_url(SERVICE, "world", "html")
    with pytest.raises(ValueError, match="unknown feed format"):
        rendered("html")


def test_every_format_has_a_content_type_and_extension() -> None:
    assert set(CONTENT_TYPES) == set(EXTENSIONS) == set(FORMATS)
    assert all(value.endswith("; charset=utf-8") for value in CONTENT_TYPES.values())


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_hundred_large_stories_render_whole(fmt: str) -> None:
    paragraph = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 90 + "</p>"
    stories = [make_story(n, content_html=paragraph) for n in range(200)]
    body = rendered(fmt, stories)  # how fast: bench/, not a timed test
    assert len(body) > 200 * 5000
    assert body.count(b"Lorem ipsum") >= 200 * 90
