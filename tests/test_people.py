"""Pages for people: each feed's river page, and OPML lists of our feeds and sources."""

from __future__ import annotations

from pathlib import Path

import requests
from lxml import etree

from syndicate.cli import main
from syndicate.config import load_config
from syndicate.store import Store
from tests.loopback import LoopbackServer
from tests.webserver import running_app

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Alpha &lt;b&gt;</title>
<link>https://alpha.example/</link><description>d</description>
<item><guid>one</guid><title>Bridge &lt;script&gt;alert(1)&lt;/script&gt; reopens</title>
<link>https://alpha.example/bridge</link>
<description><![CDATA[<p>The bridge reopened.</p><p><a href="javascript:alert(2)">x</a></p>
<p>Quellen: www.npr.org, dpa</p>]]></description></item>
</channel></rss>"""


def test_river_page_and_opml(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.add_feed("/alpha.xml", FEED)
    local = tmp_path / "local.xml"
    local.write_bytes(FEED.replace(b"<guid>one", b"<guid>two"))
    path = tmp_path / "syndicate.yaml"
    path.write_text(f"""service:
  base_url: https://feeds.example.org
  database: sqlite:///{tmp_path}/store.db
sources:
  - id: alpha
    title: Alpha News
    url: {loopback.url("/alpha.xml")}
  - id: local
    url: {local}
feeds:
  - id: news
    title: All the news
""")
    assert main(["--config", str(path), "fetch"]) == 0
    config = load_config(path)
    store = Store(config.service.database)
    try:
        with running_app(config, store) as (_app, base):
            page = requests.get(f"{base}/feeds/news.html", timeout=5)
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            text = page.text
            assert "Bridge" in text and "reopens" in text
            assert "<script" not in text and "javascript:" not in text
            assert '<a href="https://alpha.example/bridge">Alpha News</a>' in text
            assert "www.npr.org" in text and "dpa" in text
            assert 'type="application/atom+xml"' in text  # autodiscovery
            assert 'name="viewport"' in text
            assert requests.get(f"{base}/feeds/news.html", timeout=5, headers={
                "If-None-Match": page.headers["etag"]}).status_code == 304

            feeds = etree.fromstring(requests.get(f"{base}/feeds.opml", timeout=5).content)
            (outline,) = feeds.findall("body/outline")
            assert outline.get("xmlUrl") == "https://feeds.example.org/feeds/news.atom"
            assert outline.get("htmlUrl") == "https://feeds.example.org/feeds/news.html"

            sources = etree.fromstring(requests.get(f"{base}/sources.opml", timeout=5).content)
            assert [o.get("xmlUrl") for o in sources.findall("body/outline")] == [
                loopback.url("/alpha.xml")]  # a local file means nothing to another reader

            index = requests.get(f"{base}/", timeout=5).text
            assert 'href="https://feeds.example.org/feeds/news.html"' in index
            assert 'href="/feeds.opml"' in index
    finally:
        store.close()
