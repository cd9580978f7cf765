"""Real feed readers subscribe to what we serve: newsboat (the Debian package) and the
`reader` library, each against every output format, over loopback, from the real app under
uvicorn after a real `syndicate fetch`.

Each client must find every story exactly once, with our title, link and date, and the story
that two sources carried once (its footer naming both outlets). A second poll must be a
conditional request that the server answers with 304: the app is wrapped in a recorder that
notes each request's validators and the status it got, so that is observed, not assumed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from reader import make_reader

from syndicate.cli import main
from syndicate.config import load_config
from syndicate.publish import select_stories
from syndicate.store import Store
from syndicate.types import Story
from syndicate.web import App
from syndicate.web.app import Response
from syndicate.web.app import Served as ServedFeed
from tests.loopback import LoopbackServer
from tests.webserver import running_app

FORMATS = ("rss", "atom", "json")
NEWSBOAT = "newsboat"
# newsboat reads RSS and Atom only: JSON Feed is its open issue #426 (2.21 answers our .json
# with "XML root node is NULL").
NEWSBOAT_FORMATS = ("rss", "atom")

ALPHA_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Alpha News</title><link>https://alpha.example/</link>
<description>alpha</description>
<item>
  <title>Bridge reopens after two years of repairs</title>
  <link>https://news.example/2025/bridge?utm_source=alpha</link>
  <guid isPermaLink="false">alpha-1</guid>
  <pubDate>Mon, 02 Jun 2025 08:00:00 GMT</pubDate>
  <description>The old river bridge reopened on Monday after two years of repairs to its
  piers, its deck and the railings along the footpath.</description>
</item>
<item>
  <title>Café &amp; bakery owners say “prices are up 5%”</title>
  <link>https://alpha.example/2025/cafe</link>
  <guid isPermaLink="false">alpha-2</guid>
  <pubDate>Sun, 01 Jun 2025 06:30:00 +0200</pubDate>
  <description>Flour, butter and rent all cost more than a year ago, owners told us.</description>
</item>
</channel></rss>
""".encode()

BETA_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Beta Daily</title><link href="https://beta.example/"/>
  <id>urn:beta</id><updated>2025-06-02T09:00:00Z</updated>
  <entry>
    <title>River bridge open again</title>
    <link href="https://NEWS.example:443/2025/bridge?fbclid=xyz#top"/>
    <id>urn:beta:b-77</id>
    <updated>2025-06-02T09:00:00Z</updated>
    <summary>Beta's copy of the bridge story.</summary>
  </entry>
  <entry>
    <title>Council votes on next year's budget</title>
    <link href="https://beta.example/2025/budget"/>
    <id>urn:beta:b-78</id>
    <published>2025-06-01T10:00:00Z</published>
    <updated>2025-06-01T12:30:00Z</updated>
    <summary>The council met until late; the swimming pool keeps its funding.</summary>
  </entry>
</feed>
"""

GAMMA_JSON = b"""{
  "version": "https://jsonfeed.org/version/1.1",
  "title": "Gamma Post", "home_page_url": "https://gamma.example/",
  "items": [{
    "id": "gamma-9", "url": "https://gamma.example/2025/library",
    "title": "Library extends its opening hours",
    "content_text": "From July the central library opens on Sundays and until nine on weekdays.",
    "date_published": "2025-05-31T07:15:00+02:00"
  }]
}"""

BRIDGE_LINK = "https://news.example/2025/bridge"
OUTLET_NAMES = ("Alpha News", "Beta Daily")  # the bridge story's footer names both


# --- the served feeds, and what the server saw ------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request to the app: its path, validators and user agent, and the status it got."""

    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str


class RecordingApp(App):
    """Our real app, recording each feed request and the status that answered it. It records
    in ``answer``, which both the feed fast path and the ASGI path call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[Exchange] = []

    def answer(self, served: ServedFeed, headers: list[tuple[bytes, bytes]]) -> Response:
        response = super().answer(served, headers)
        named = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.exchanges.append(Exchange(
            path=f"/feeds/{served.feed.feed_id}.{served.feed.format}", status=response.status,
            if_none_match=named.get("if-none-match"),
            if_modified_since=named.get("if-modified-since"),
            user_agent=named.get("user-agent", "")))
        return response


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    app: RecordingApp
    stories: tuple[Story, ...]  # what the store holds for feed "news", as published

    def url(self, fmt: str) -> str:
        return f"{self.base}/feeds/news.{fmt}"


def write_config(directory: Path, loopback: LoopbackServer) -> Path:
    path = directory / "syndicate.yaml"
    path.write_text(f"""
service:
  base_url: http://feeds.test
  database: sqlite:///{directory}/store.db
  fetch_workers: 1
sources:
  - id: alpha
    url: {loopback.url("/alpha.xml")}
  - id: beta
    url: {loopback.url("/beta.atom")}
  - id: gamma
    url: {loopback.url("/gamma.json")}
feeds:
  - id: news
    title: All the news
    description: Every story once.
""")
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Three sources fetched into a store, the feeds served; shared by both clients' tests."""
    directory = tmp_path_factory.mktemp("served")
    with LoopbackServer() as loopback:
        loopback.add_feed("/alpha.xml", ALPHA_RSS)
        loopback.add_feed("/beta.atom", BETA_ATOM, content_type="application/atom+xml")
        loopback.add_feed("/gamma.json", GAMMA_JSON, content_type="application/feed+json")
        config_path = write_config(directory, loopback)
        assert main(["--config", str(config_path), "fetch"]) == 0
        config = load_config(config_path)
        store = Store(config.service.database)
        try:
            stories = store.stories_with_members(
                select_stories(store, config, config.feed("news")))
            check_the_setup(stories)
            with running_app(config, store, app_factory=RecordingApp) as (app, base):
                assert isinstance(app, RecordingApp)
                yield Served(base, app, tuple(stories))
        finally:
            store.close()


def check_the_setup(stories: list[Story]) -> None:
    """Five entries from three sources make four stories, the bridge one with both outlets."""
    assert len(stories) == 4, [s.title for s in stories]
    (bridge,) = [s for s in stories if s.link == BRIDGE_LINK]
    assert sorted(m.source_id for m in bridge.members) == ["alpha", "beta"]
    assert len({s.guid for s in stories}) == 4


def exchanges(served: Served, fmt: str, start: int, end: int | None = None) -> list[Exchange]:
    """The requests for the feed in ``fmt`` among the app's exchanges[start:end]."""
    return [e for e in served.app.exchanges[start:end] if e.path == f"/feeds/news.{fmt}"]


def polls(served: Served, fmt: str, marks: list[int]) -> list[list[Exchange]]:
    """The requests for ``fmt`` in each poll, given the exchange count before each poll."""
    ends: list[int | None] = [*marks[1:], None]
    return [exchanges(served, fmt, start, end) for start, end in zip(marks, ends, strict=True)]


def assert_polled_conditionally(polls: list[list[Exchange]], client: str, fmt: str) -> None:
    """One request a poll; the first gets the feed (200). A later request that names a
    validator gets 304, one that names none gets 200, and the last poll must name one."""
    assert all(len(poll) == 1 for poll in polls), (client, fmt, polls)
    requests = [poll[0] for poll in polls]
    assert requests[0].status == 200, (client, fmt, requests[0])
    for request in requests[1:]:
        conditional = bool(request.if_none_match or request.if_modified_since)
        assert request.status == (304 if conditional else 200), (client, fmt, request)
    last = requests[-1]
    assert last.if_none_match or last.if_modified_since, (
        f"{client} sent neither If-None-Match nor If-Modified-Since on poll {len(requests)} "
        f"of .{fmt}: {last}")


def by_guid(stories: tuple[Story, ...]) -> dict[str, Story]:
    return {s.guid: s for s in stories}


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# --- newsboat ---------------------------------------------------------------------------------


def require_newsboat() -> None:
    if shutil.which(NEWSBOAT) is None:
        pytest.fail("newsboat is not installed: `make test` installs it (apt-get install -y "
                    "newsboat); this test subscribes it to our feeds and must not be skipped")


class Newsboat:
    """A newsboat with its own home, urls, config and SQLite cache, run with `-x reload`.

    One per format: newsboat keys its cache by GUID across all feeds, so the same story in our
    RSS and Atom feeds (one GUID, as it should be) would be stored once, under the last feed.
    """

    def __init__(self, home: Path, url: str) -> None:
        home.mkdir()
        self.home = home
        self.url = url
        self.cache = home / "cache.db"
        self.error_log = home / "error.log"
        self.urls_file = home / "urls"
        self.config_file = home / "config"
        self.urls_file.write_text(f"{url}\n")
        self.config_file.write_text(
            "reload-threads 1\n"
            "download-timeout 10\n"
            "download-retries 1\n"
            f'error-log "{self.error_log}"\n')

    def reload(self) -> None:
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "LC_ALL": "C.UTF-8",  # newsboat stores titles in the locale's charset
               "XDG_CONFIG_HOME": str(self.home / ".config"),
               "XDG_DATA_HOME": str(self.home / ".local" / "share"),
               "no_proxy": "127.0.0.1"}
        done = subprocess.run(
            [NEWSBOAT, "-u", str(self.urls_file), "-c", str(self.cache),
             "-C", str(self.config_file), "-x", "reload"],
            env=env, capture_output=True, text=True, timeout=60, cwd=self.home)
        errors = self.error_log.read_text() if self.error_log.exists() else ""
        assert done.returncode == 0 and not errors.strip(), (
            f"newsboat failed on {self.url} ({done.returncode}): "
            f"{done.stdout}{done.stderr}{errors}")

    def items(self) -> list[dict[str, Any]]:
        with contextlib.closing(sqlite3.connect(self.cache)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT guid, title, url, pubDate, content FROM rss_item "
                              "WHERE feedurl = ? AND deleted = 0", (self.url,)).fetchall()
        return [dict(row) for row in rows]


def test_newsboat_reads_every_format_once_and_polls_again_conditionally(
        served: Served, tmp_path: Path) -> None:
    require_newsboat()
    expected = by_guid(served.stories)
    for fmt in NEWSBOAT_FORMATS:
        newsboat = Newsboat(tmp_path / fmt, served.url(fmt))
        # Three polls: newsboat 2.21 (Debian 12) loses the validators of a feed's very first
        # download (it stores them before the feed's row exists: newsboat issue #2734), so its
        # second poll is unconditional and only the third one is conditional.
        marks = []
        for _ in range(3):
            marks.append(len(served.app.exchanges))
            newsboat.reload()

        items = newsboat.items()
        assert sorted(item["guid"] for item in items) == sorted(expected), fmt
        for item in items:
            story = expected[item["guid"]]
            assert item["title"] == story.title, fmt
            assert item["url"] == story.link, fmt
            # newsboat dates an item by RSS pubDate, and by Atom <published> over <updated>.
            assert item["pubDate"] == int(story.published.timestamp()), (fmt, story.title)
            if story.link == BRIDGE_LINK:
                assert all(name in item["content"] for name in OUTLET_NAMES), fmt

        assert_polled_conditionally(polls(served, fmt, marks), NEWSBOAT, fmt)


# --- the reader library -----------------------------------------------------------------------


def test_reader_library_reads_every_format_once_and_polls_again_conditionally(
        served: Served, tmp_path: Path) -> None:
    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        for fmt in FORMATS:
            reader.add_feed(served.url(fmt))
        marks = [len(served.app.exchanges)]
        reader.update_feeds()
        marks.append(len(served.app.exchanges))
        # Unscheduled: a scheduled update waits for each feed's next update time (reader's
        # interval, an hour by default, or our Cache-Control max-age if later): no request.
        reader.update_feeds(scheduled=False)

        expected = by_guid(served.stories)
        for fmt in FORMATS:
            feed = reader.get_feed(served.url(fmt))
            assert feed.last_exception is None, (fmt, feed.last_exception)
            entries = list(reader.get_entries(feed=feed))
            assert sorted(entry.id for entry in entries) == sorted(expected), fmt
            for entry in entries:
                story = expected[entry.id]
                assert entry.title == story.title, fmt
                assert entry.link == story.link, fmt
                assert entry.published is not None and utc(entry.published) == story.published
                if fmt != "rss":  # RSS 2.0 has no "updated"
                    assert entry.updated is not None and utc(entry.updated) == story.updated
                if story.link == BRIDGE_LINK:
                    text = " ".join(c.value for c in entry.content)
                    assert all(name in text for name in OUTLET_NAMES), fmt

            assert_polled_conditionally(polls(served, fmt, marks), "reader", fmt)
    finally:
        reader.close()
