"""The whole pipeline: loopback feeds → `syndicate fetch` → stored stories → served feeds.

Two sources carry the same story under different GUIDs, one link laden with tracking
parameters; every output format must hold that story once with both outlets, and nothing
changes on a second fetch when nothing changed upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import requests
from lxml import etree

from syndicate.cli import main
from syndicate.config import load_config
from syndicate.publish.render import SOURCES_NS
from syndicate.store import Store
from tests.loopback import LoopbackServer
from tests.webserver import running_app

ALPHA_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Alpha News</title><link>https://alpha.example/</link>
<description>alpha</description>
<item>
  <title>Bridge reopens after two years of repairs</title>
  <link>https://news.example/2026/bridge?utm_source=alpha&amp;utm_medium=rss</link>
  <guid isPermaLink="false">alpha-1</guid>
  <pubDate>Mon, 23 Nov 2026 08:00:00 GMT</pubDate>
  <description>The old river bridge is open again.</description>
  <content:encoded><![CDATA[<p>The old river bridge reopened on Monday after two years of
  repairs.</p><script>alert('x')</script><p><a href="javascript:alert(1)">click</a>
  <img src="/pic.jpg" onerror="alert(2)"></p>]]></content:encoded>
</item>
<item>
  <title>Alpha only story</title>
  <link>https://alpha.example/only</link>
  <guid isPermaLink="false">alpha-2</guid>
  <pubDate>Sun, 22 Nov 2026 08:00:00 GMT</pubDate>
  <description>Only alpha has this one.</description>
</item>
</channel></rss>
"""

BETA_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Beta Daily</title><link href="https://beta.example/"/>
  <id>urn:beta</id><updated>2026-11-23T09:00:00Z</updated>
  <entry>
    <title>River bridge open again</title>
    <link href="https://NEWS.example:443/2026/bridge?fbclid=xyz#top"/>
    <id>urn:beta:b-77</id>
    <updated>2026-11-23T09:00:00Z</updated>
    <summary>Beta's copy of the bridge story.</summary>
  </entry>
</feed>
"""

BRIDGE_LINK = "https://news.example/2026/bridge"


def write_config(tmp_path: Path, loopback: LoopbackServer) -> Path:
    path = tmp_path / "syndicate.yaml"
    path.write_text(f"""
service:
  base_url: http://feeds.test
  database: sqlite:///{tmp_path}/store.db
  fetch_workers: 1   # one at a time, so "first appearance" order is the config's order
defaults:
  interval: 15m
sources:
  - id: alpha
    url: {loopback.url("/alpha.xml")}
    tags: [news]
  - id: beta
    url: {loopback.url("/beta.atom")}
    tags: [news]
feeds:
  - id: news
    title: All the news
    description: Every story once.
    tags: [news]
""")
    return path


def test_two_sources_one_story_every_format(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.add_feed("/alpha.xml", ALPHA_RSS)
    loopback.add_feed("/beta.atom", BETA_ATOM, content_type="application/atom+xml")
    config_path = write_config(tmp_path, loopback)

    assert main(["--config", str(config_path), "fetch"]) == 0

    config = load_config(config_path)
    store = Store(config.service.database)
    try:
        with running_app(config, store) as (_app, base):
            atom = requests.get(f"{base}/feeds/news.atom", timeout=5)
            rss = requests.get(f"{base}/feeds/news.rss", timeout=5)
            jsonfeed = requests.get(f"{base}/feeds/news.json", timeout=5)
            assert atom.headers["content-type"].startswith("application/atom+xml")
            assert rss.headers["content-type"].startswith("application/rss+xml")
            assert jsonfeed.headers["content-type"].startswith("application/feed+json")
            assert atom.headers["content-encoding"] == "gzip"  # requests asks for gzip

            check_atom(atom.content)
            check_rss(rss.content)
            check_json(jsonfeed.content)
            for response in (atom, rss, jsonfeed):
                assert b"<script" not in response.content
                assert b"javascript:" not in response.content
                assert b"onerror" not in response.content

            again = requests.get(f"{base}/feeds/news.atom", timeout=5,
                                 headers={"If-None-Match": atom.headers["etag"]})
            assert again.status_code == 304
            assert again.content == b""

            etags_before = store.rendered_etags()
            stories_before = store.story_count()
            requests_before = len(loopback.requests)

            assert main(["--config", str(config_path), "fetch", "--all"]) == 0

            conditional = loopback.requests[requests_before:]
            assert {r.path for r in conditional} == {"/alpha.xml", "/beta.atom"}
            assert all("if-none-match" in r.headers for r in conditional)
            assert store.rendered_etags() == etags_before
            assert store.story_count() == stories_before
            assert requests.get(f"{base}/feeds/news.atom", timeout=5,
                                headers={"If-None-Match": atom.headers["etag"]}
                                ).status_code == 304
    finally:
        store.close()


def bridge_entries(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in entries if e.get("link") == BRIDGE_LINK]


def check_atom(body: bytes) -> None:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 2
    assert len(bridge_entries(parsed.entries)) == 1
    root = etree.fromstring(body)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    (entry,) = [e for e in root.findall("a:entry", ns) if any(
        link.get("rel", "alternate") == "alternate" and link.get("href") == BRIDGE_LINK
        for link in e.findall("a:link", ns))]
    via = [(link.get("title"), link.get("href"))
           for link in entry.findall("a:link[@rel='via']", ns)]
    # each carrying outlet links to its own copy; both copies live at one URL, linked once
    assert via == [("Alpha News", BRIDGE_LINK)], via
    outlets = entry.findall(f".//{{{SOURCES_NS}}}outlet")
    assert [(o.get("host"), o.get("carried")) for o in outlets] == [
        ("alpha.example", "true"), ("beta.example", "true")]


def check_rss(body: bytes) -> None:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == 2
    (bridge,) = bridge_entries(parsed.entries)
    content = bridge["content"][0]["value"]  # type: ignore[index]
    assert "Alpha News" in content and "Beta Daily" in content  # the "Sources" footer
    guids = [e["id"] for e in parsed.entries]
    assert len(set(guids)) == len(guids)


def check_json(body: bytes) -> None:
    feed = json.loads(body)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    bridge = [item for item in feed["items"] if item.get("url") == BRIDGE_LINK]
    assert len(bridge) == 1
    extension = next(v for k, v in bridge[0].items() if k.startswith("_"))
    hosts = [s["host"] for s in extension["sources"]]
    assert hosts[:2] == ["alpha.example", "beta.example"]
    assert all(s["carried"] for s in extension["sources"][:2])


def test_stories_json_lists_members_and_reasons(tmp_path: Path, loopback: LoopbackServer,
                                                capsys: object) -> None:
    loopback.add_feed("/alpha.xml", ALPHA_RSS)
    loopback.add_feed("/beta.atom", BETA_ATOM, content_type="application/atom+xml")
    config_path = write_config(tmp_path, loopback)
    assert main(["--config", str(config_path), "fetch"]) == 0
    capsys.readouterr()  # type: ignore[attr-defined]

    assert main(["--config", str(config_path), "stories", "--json"]) == 0
    stories = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    (bridge,) = [s for s in stories if any(m["link"] == BRIDGE_LINK for m in s["members"])]
    assert [(m["source"], m["guid"], m["reason"]) for m in bridge["members"]] == [
        ("alpha", "alpha-1", "new"), ("beta", "urn:beta:b-77", "url")]
    assert [s["host"] for s in bridge["sources"]][:2] == ["alpha.example", "beta.example"]
    assert bridge["id"].startswith("urn:uuid:")


SEED_FEEDS = Path(__file__).parent / "data" / "citations"


def test_the_seed_article_is_republished_with_its_place_and_outlets(
        tmp_path: Path, capsys: object) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(f"""
service:
  base_url: http://feeds.test
  database: sqlite:///{tmp_path}/store.db
sources:
  - id: n-ag
    url: {SEED_FEEDS / "seed_text.rss"}
    language: de
feeds:
  - id: de
    title: Nachrichten
    language: de
""")
    assert main(["--config", str(path), "fetch"]) == 0
    capsys.readouterr()  # type: ignore[attr-defined]
    assert main(["--config", str(path), "stories", "--json"]) == 0
    (story,) = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert story["place"] == "Sumy, Ukraine"
    assert [(s["host"], s["carried"]) for s in story["sources"]] == [
        ("n-ag.de", True), ("rp-online.de", False), ("www.npr.org", False),
        ("www.swp-berlin.org", False)]

    config = load_config(path)
    store = Store(config.service.database)
    try:
        body = store.rendered_feed("de", "rss")
        assert body is not None
        (item,) = feedparser.parse(body.body).entries
        content = item["content"][0]["value"]
        assert "Besuchen Sie uns auf" not in content  # the site footer is gone
        assert "Am 13. Februar 2025 endete die Funkstille" in content  # the body is not
        assert "<strong>Ort:</strong> Sumy, Ukraine" in content  # our own footer, in German
        assert "Quellen:" in content and "www.swp-berlin.org" in content
    finally:
        store.close()
