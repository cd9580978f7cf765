"""Paged feed archives (RFC 5005 §4): full pages of first-seen stories, linked from the
current feed, served by the web process, walkable back to the first story."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
import requests
from lxml import etree

from syndicate.cli import main
from syndicate.config import load_config
from syndicate.store import Store
from syndicate.web import App
from tests.webserver import running_app

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
STORIES = 7
LIMIT = 3  # 7 stories: archive pages 1 (stories 1-3) and 2 (4-6); story 7 only in the feed


def rss(count: int) -> str:
    items = "".join(
        f"<item><guid>s{i}</guid><title>Story number {i}</title>"
        f"<link>https://site.example/{i}</link>"
        f"<pubDate>Mon, {10 + i} Nov 2026 08:00:00 GMT</pubDate>"
        f"<description>Text of story {i} about topic {i * 37}.</description></item>"
        for i in range(1, count + 1))
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title>'
            f"<link>https://site.example/</link><description>d</description>{items}"
            "</channel></rss>")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path, App]]:
    (tmp_path / "feed.xml").write_text(rss(STORIES))
    config_path = tmp_path / "syndicate.yaml"
    config_path.write_text(
        f"service:\n  base_url: https://feeds.example\n"
        f"  database: sqlite:///{tmp_path}/store.db\n  parse_workers: 0\n"
        f"sources:\n  - id: site\n    url: {tmp_path}/feed.xml\n"
        f"feeds:\n  - id: news\n    title: News\n    limit: {LIMIT}\n")
    assert main(["--config", str(config_path), "fetch"]) == 0
    config = load_config(config_path)
    store = Store(config.service.database)
    try:
        with running_app(config, store) as (app, base):
            yield base, config_path, app
    finally:
        store.close()


def links(document: bytes) -> dict[str, str]:
    root = etree.fromstring(document)
    return {link.get("rel"): link.get("href") for link in root.iter(f"{ATOM}link")}


def titles(document: bytes) -> set[str]:
    return {entry.title for entry in feedparser.parse(document).entries}


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_a_reader_walks_back_from_the_feed_to_the_first_story(
        site: tuple[str, Path, App], fmt: str) -> None:
    base, _, _ = site
    public = "https://feeds.example"
    current = requests.get(f"{base}/feeds/news.{fmt}", timeout=5).content
    assert links(current)["prev-archive"] == f"{public}/feeds/news/archive/2.{fmt}"

    seen, url, pages = titles(current), links(current)["prev-archive"], []
    while url:
        response = requests.get(url.replace(public, base), timeout=5)
        assert response.status_code == 200
        page = response.content
        root = etree.fromstring(page)
        assert next(root.iter(f"{FH}archive"), None) is not None  # an archive document
        assert links(page)["current"] == f"{public}/feeds/news.{fmt}"
        assert links(page)["self"] == url
        pages.append(titles(page))
        seen |= pages[-1]
        url = links(page).get("prev-archive")
    assert pages == [{f"Story number {i}" for i in (4, 5, 6)},
                     {f"Story number {i}" for i in (1, 2, 3)}]
    assert seen == {f"Story number {i}" for i in range(1, STORIES + 1)}  # nothing lost
    oldest = requests.get(f"{base}/feeds/news/archive/1.{fmt}", timeout=5).content
    assert "prev-archive" not in links(oldest)
    assert links(oldest)["next-archive"] == f"{public}/feeds/news/archive/2.{fmt}"
    newest = requests.get(f"{base}/feeds/news/archive/2.{fmt}", timeout=5).content
    assert "next-archive" not in links(newest)


@pytest.mark.parametrize("path", [
    "/feeds/news/archive/3.atom",  # not full yet: its stories are in the current feed
    "/feeds/news/archive/0.atom",
    "/feeds/news/archive/1.json",  # RFC 5005 archives are Atom and RSS documents
    "/feeds/other/archive/1.atom",
    "/feeds/news/archive/x.atom",
    "/feeds/news/archive/99999999999999999999.atom",
])
def test_pages_that_do_not_exist_are_404(site: tuple[str, Path, App], path: str) -> None:
    base, _, _ = site
    assert requests.get(base + path, timeout=5).status_code == 404


def test_an_archive_page_answers_304_and_keeps_its_etag(
        site: tuple[str, Path, App]) -> None:
    base, config_path, app = site
    url = f"{base}/feeds/news/archive/1.atom"
    first = requests.get(url, timeout=5)
    etag = first.headers["etag"]
    assert "max-age=86400" in first.headers["cache-control"]
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert again.status_code == 304
    # A newer story changes the current feed, not a full page.
    (config_path.parent / "feed.xml").write_text(rss(STORIES + 1))
    assert main(["--config", str(config_path), "fetch", "--all"]) == 0
    version = app.archives.version
    app.refresh()  # what the web process does every 2 s
    assert app.archives.version > version  # so the page is rendered again, to the same bytes,
    app.archives.FRESH_SECONDS = 0  # once the minute it is served as it is has passed
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=5).status_code == 304


def item(guid: str, title: str, link: str, day: int) -> str:
    return (f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
            f"<pubDate>Mon, {day:02d} Nov 2026 08:00:00 GMT</pubDate>"
            f"<description>{title}: the full story, told at length.</description></item>")


def channel(site: str, *items: str) -> str:
    return ('<?xml version="1.0"?><rss version="2.0"><channel>'
            f"<title>{site}</title><link>https://{site}/</link><description>d</description>"
            + "".join(items) + "</channel></rss>")


def test_a_story_that_joins_the_feed_late_waits_for_the_next_page(tmp_path: Path) -> None:
    """Full pages never change: an old story that a source of the feed carries later goes to
    the open tail, so a reader who walked the archive before still finds it."""
    old_story = item("a1", "Harbour reopens", "https://news.example/harbour", 2)
    (tmp_path / "a.xml").write_text(channel("a.example", old_story))
    b_items = [item(f"b{i}", f"Story b{i}", f"https://b.example/{i}", 10 + i) for i in range(4)]
    (tmp_path / "b.xml").write_text(channel("b.example", *b_items))
    config_path = tmp_path / "syndicate.yaml"
    config_path.write_text(
        f"service:\n  database: sqlite:///{tmp_path}/store.db\n  parse_workers: 0\n"
        f"sources:\n  - id: a\n    url: {tmp_path}/a.xml\n  - id: b\n    url: {tmp_path}/b.xml\n"
        f"feeds:\n  - id: bfeed\n    title: B\n    sources: [b]\n    limit: 2\n")

    def pages() -> list[list[str]]:
        store = Store(load_config(config_path).service.database)
        try:
            return [sorted(s.title for s in store.archive_page_stories("bfeed", n))
                    for n in range(1, store.archive_page_count("bfeed") + 1)]
        finally:
            store.close()

    assert main(["--config", str(config_path), "fetch"]) == 0
    before = pages()
    assert before == [["Story b0", "Story b1"], ["Story b2", "Story b3"]]

    # b now carries a copy of a's old story (same link): it joins the feed with a low id.
    late_copy = item("b-copy", "Harbour reopens", "https://news.example/harbour", 2)
    (tmp_path / "b.xml").write_text(channel("b.example", *b_items, late_copy))
    assert main(["--config", str(config_path), "fetch", "--all"]) == 0
    assert pages() == before  # published pages keep their stories

    newer = item("b9", "Story b9", "https://b.example/9", 20)
    (tmp_path / "b.xml").write_text(channel("b.example", *b_items, late_copy, newer))
    assert main(["--config", str(config_path), "fetch", "--all"]) == 0
    assert pages() == [*before, ["Harbour reopens", "Story b9"]]  # the tail filled a page
