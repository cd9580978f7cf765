"""The web front under the real uvicorn: feeds, conditional GET, gzip, HEAD, pages."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from syndicate.config import parse_config
from syndicate.publish import rendered_feed
from syndicate.store import SCHEDULER_HEARTBEAT, Store
from syndicate.types import Config
from syndicate.web import App
from syndicate.web.app import Liveness
from tests.webserver import running_app

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BODY = b"<?xml version='1.0'?><rss version='2.0'><channel><title>x</title></channel></rss>"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store, Config]]:
    text = f"""
service:
  base_url: https://feeds.example/sub
  database: sqlite:///{tmp_path}/store.db
sources:
  - id: evil
    url: {tmp_path}/feed.xml
feeds:
  - id: news
    title: News <&> "quoted"
    description: All of it.
"""
    (tmp_path / "feed.xml").write_bytes(BODY)
    config = parse_config(text, tmp_path / "syndicate.yaml")
    store = Store(config.service.database)
    store.save_rendered(rendered_feed("news", "rss", BODY, T0))
    store.sync_sources(config.sources, T0)
    store.record_failure("evil", message="<script>alert(1)</script> broke", status=500,
                         next_fetch_at=T0, now=T0)
    with running_app(config, store) as (_app, base):
        yield base, store, config
    store.close()


def test_feed_is_served_with_validators(served: tuple[str, Store, Config]) -> None:
    base, _, _ = served
    plain = requests.get(f"{base}/feeds/news.rss", headers={"Accept-Encoding": "identity"},
                         timeout=5)
    assert plain.status_code == 200
    assert plain.content == BODY
    assert plain.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert plain.headers["etag"].startswith('"') and plain.headers["etag"].endswith('"')
    assert plain.headers["last-modified"] == "Wed, 25 Nov 2026 10:00:00 GMT"
    assert "max-age" in plain.headers["cache-control"]
    assert plain.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in plain.headers

    raw = requests.get(f"{base}/feeds/news.rss", headers={"Accept-Encoding": "gzip"},
                       timeout=5, stream=True)
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'  # RFC 9110 §8.8.3
    assert gzip.decompress(raw.raw.read()) == BODY

    for headers in ({"If-None-Match": plain.headers["etag"]},
                    {"If-None-Match": f'"other", W/{plain.headers["etag"]}'},
                    {"If-Modified-Since": plain.headers["last-modified"]}):
        again = requests.get(f"{base}/feeds/news.rss", headers=headers, timeout=5)
        assert again.status_code == 304, headers
        assert again.headers["etag"] == raw.headers["etag"]  # requests asks for gzip

    head = requests.head(f"{base}/feeds/news.rss", headers={"Accept-Encoding": "identity"},
                         timeout=5)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(BODY))
    assert head.content == b""


def test_new_renderings_reach_the_server(served: tuple[str, Store, Config]) -> None:
    base, store, _ = served
    store.save_rendered(rendered_feed("news", "rss", BODY + b"\n", T0))
    import time
    deadline = time.monotonic() + 10
    while requests.get(f"{base}/feeds/news.rss", timeout=5).content != BODY + b"\n":
        assert time.monotonic() < deadline, "the server never picked up the new rendering"
        time.sleep(0.2)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/feeds/nope.rss", 404),
    ("GET", "/feeds/news.atom", 404),  # not rendered yet
    ("GET", "/feeds/news.xml", 404),
    ("GET", "/elsewhere", 404),
    ("POST", "/feeds/news.rss", 405),
    ("DELETE", "/", 405),
    ("GET", "/healthz", 200),
])
def test_routes(served: tuple[str, Store, Config], method: str, path: str,
                status: int) -> None:
    base, _, _ = served
    assert requests.request(method, base + path, timeout=5).status_code == status


def test_index_has_autodiscovery_and_escapes(served: tuple[str, Store, Config]) -> None:
    base, _, _ = served
    page = requests.get(base + "/", timeout=5).text
    assert ('<link rel="alternate" type="application/atom+xml" title="News &lt;&amp;&gt; '
            '&quot;quoted&quot; (ATOM)" href="https://feeds.example/sub/feeds/news.atom">'
            in page)
    assert 'type="application/rss+xml"' in page and 'type="application/feed+json"' in page
    assert "<&>" not in page


def test_status_page_shows_health_escaped(served: tuple[str, Store, Config]) -> None:
    base, _, _ = served
    page = requests.get(base + "/status", timeout=5).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; broke" in page
    assert "<script>" not in page
    assert '<tr class="failing">' in page


def test_healthz_says_what_is_wrong(served: tuple[str, Store, Config]) -> None:
    base, _, _ = served
    assert requests.get(base + "/healthz", timeout=5).json() == {"status": "ok"}


@pytest.mark.parametrize(("heartbeat", "status"), [
    ({"at": "NOW", "problem": None}, "ok"),
    ({"at": "NOW", "stopped": True}, "scheduler stopped"),
    ({"at": "2026-01-01T00:00:00+00:00", "problem": None}, "scheduler has not ticked for"),
    ({"at": "NOW", "problem": "scheduler not running"}, "scheduler not running"),
])
def test_healthz_reads_the_heartbeat_the_scheduler_writes(
        tmp_path: Path, heartbeat: dict[str, object], status: str) -> None:
    text = f"service:\n  database: sqlite:///{tmp_path}/s.db\nsources:\n  - id: a\n" \
           f"    url: https://a.example/feed\n"
    config = parse_config(text, tmp_path / "c.yaml")
    store = Store(config.service.database)
    if heartbeat["at"] == "NOW":
        heartbeat["at"] = datetime.now(UTC).isoformat()
    store.set_meta_value(SCHEDULER_HEARTBEAT, json.dumps(heartbeat))
    try:
        with running_app(config, store, app_factory=lambda c, s: App(c, s, liveness=Liveness(s))
                         ) as (_, base):
            response = requests.get(base + "/healthz", timeout=5)
            assert response.json()["status"].startswith(status)
            assert response.status_code == (200 if status == "ok" else 503)
    finally:
        store.close()


def test_cache_control_follows_how_often_the_feed_changes(
        served: tuple[str, Store, Config]) -> None:
    base, store, _ = served
    url = f"{base}/feeds/news.rss"
    assert requests.get(url, timeout=5).headers["cache-control"] == "public, max-age=300"
    changed = BODY.replace(b"<title>x</title>", b"<title>y</title>")
    store.save_rendered(rendered_feed("news", "rss", changed, T0 + timedelta(minutes=8)))
    wait_for_refresh = datetime.now(UTC) + timedelta(seconds=10)
    while requests.get(url, timeout=5).content != changed:  # the app re-reads every 2 s
        assert datetime.now(UTC) < wait_for_refresh, "the new rendering was never served"
        time.sleep(0.2)
    # changed 8 minutes after the version before: reused for a quarter of that
    assert requests.get(url, timeout=5).headers["cache-control"] == "public, max-age=120"
