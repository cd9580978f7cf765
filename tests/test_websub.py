"""WebSub: feeds name the hub, and the hub is pinged right after a feed changes, only then."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from syndicate.cli import main
from syndicate.config import load_config
from syndicate.store import Store
from tests.loopback import LoopbackServer

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<link>https://t.example/</link><description>d</description>
<item><guid>one</guid><title>First</title><link>https://t.example/1</link></item>
</channel></rss>"""


def hub_pings(loopback: LoopbackServer) -> list[dict[str, list[str]]]:
    return [parse_qs(r.body.decode()) for r in loopback.requests
            if r.path == "/hub" and r.method == "POST"]


def write_config(tmp_path: Path, loopback: LoopbackServer) -> Path:
    path = tmp_path / "syndicate.yaml"
    path.write_text(f"""service:
  base_url: https://feeds.example.org
  database: sqlite:///{tmp_path}/store.db
  websub_hub: {loopback.url("/hub")}
sources:
  - id: one
    url: {loopback.url("/feed.xml")}
feeds:
  - id: all
""")
    return path


def test_the_hub_is_pinged_after_a_change_and_only_then(tmp_path: Path,
                                                        loopback: LoopbackServer) -> None:
    loopback.add_feed("/feed.xml", FEED)
    loopback.add_status("/hub", 202)
    path = write_config(tmp_path, loopback)

    assert main(["--config", str(path), "fetch"]) == 0
    pings = hub_pings(loopback)
    assert sorted(p["hub.url"][0] for p in pings) == [
        "https://feeds.example.org/feeds/all.atom", "https://feeds.example.org/feeds/all.json",
        "https://feeds.example.org/feeds/all.rss"]
    assert all(p["hub.mode"] == ["publish"] and p["hub.topic"] == p["hub.url"] for p in pings)

    store = Store(load_config(path).service.database)
    try:
        atom = store.rendered_feed("all", "atom")
        assert atom is not None and loopback.url("/hub").encode() in atom.body  # rel="hub"
    finally:
        store.close()

    assert main(["--config", str(path), "fetch", "--all"]) == 0  # nothing changed
    assert len(hub_pings(loopback)) == 3

    loopback.set_body("/feed.xml", FEED.replace(b"First", b"First, edited"))
    assert main(["--config", str(path), "fetch", "--all"]) == 0
    assert len(hub_pings(loopback)) == 6


def test_a_failing_hub_does_not_fail_the_fetch(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.add_feed("/feed.xml", FEED)
    loopback.add_status("/hub", 500)
    path = write_config(tmp_path, loopback)
    assert main(["--config", str(path), "fetch"]) == 0
    assert len(hub_pings(loopback)) == 3
    store = Store(load_config(path).service.database)
    try:
        assert store.rendered_feed("all", "rss") is not None
    finally:
        store.close()
