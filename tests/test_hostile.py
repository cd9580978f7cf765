"""One `syndicate fetch --all` over good sources and every kind of hostile server at once:
each hostile source ends as a clear per-source error, every good source is ingested."""

from __future__ import annotations

import gzip
import json
import socket
import struct
import time
from pathlib import Path

import pytest

from syndicate.cli import main
from syndicate.config import load_config
from syndicate.store import Store
from tests.loopback import LoopbackHandler, LoopbackServer


def good_feed(name: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{name}</title><link>https://{name}.example/</link><description>d"
            f"</description><item><guid>{name}-1</guid><title>Good story from {name}</title>"
            f"<link>https://{name}.example/1</link><description>Fine.</description></item>"
            f"</channel></rss>").encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
<!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>
<rss version="2.0"><channel><title>lol</title><item><guid>bomb</guid><title>Laughs</title>
<description>&i;</description></item></channel></rss>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>xxe</title><item><guid>xxe</guid><title>Entity</title>
<description>before &secret; after</description></item></channel></rss>"""

LATIN1_SAYS_UTF8 = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                    "<title>Zürich</title><link>https://charset.example/</link><description>d"
                    "</description><item><guid>c-1</guid><title>Grüße aus Zürich</title>"
                    "<link>https://charset.example/1</link></item></channel></rss>"
                    ).encode("latin-1")


def trickle(handler: LoopbackHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.end_headers()
    handler.close_connection = True
    for _ in range(60):
        if handler.server.owner.closing.is_set():  # type: ignore[attr-defined]
            return
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.5)


def gzip_bomb(handler: LoopbackHandler) -> None:
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=6)  # 32 MiB → ~32 KiB
    handler.respond(200, bomb, {"Content-Type": "application/rss+xml",
                                "Content-Encoding": "gzip"})


def reset(handler: LoopbackHandler) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def hostile(loopback: LoopbackServer, request: pytest.FixtureRequest) -> dict[str, str]:
    """source id → URL, and the fragment its error message must contain ("" = must work)."""
    for name in ("alpha", "beta", "gamma"):
        loopback.add_feed(f"/{name}.xml", good_feed(name))
    loopback.add_feed("/plain-type.xml", good_feed("delta"), content_type="text/plain")
    loopback.add_feed("/charset.xml", LATIN1_SAYS_UTF8,
                      content_type="application/rss+xml; charset=utf-8")
    loopback.add_handler("/trickle.xml", trickle)
    loopback.add_handler("/bomb.xml", gzip_bomb)
    loopback.add_handler("/reset.xml", reset)
    loopback.add_redirect("/loop-a.xml", "/loop-b.xml")
    loopback.add_redirect("/loop-b.xml", "/loop-a.xml")
    loopback.add_feed("/page.html", b"<!DOCTYPE html><html><body><h1>Shop</h1></body></html>",
                      content_type="text/html")
    loopback.add_feed("/empty.xml", b"")
    loopback.add_feed("/laughs.xml", BILLION_LAUGHS)
    loopback.add_feed("/xxe.xml", EXTERNAL_ENTITY)
    loopback.add_status("/missing.xml", 404)
    loopback.add_status("/broken.xml", 500)
    loopback.add_status("/gone.xml", 410)
    # The 503 asks its whole host to wait, so it lives on a server of its own.
    busy = LoopbackServer().start()
    request.addfinalizer(busy.stop)
    busy.add_status("/busy.xml", 503, headers={"Retry-After": "120"})
    https_to_plain = loopback.url("/alpha.xml").replace("http://", "https://")
    return {
        "alpha": "", "beta": "", "gamma": "", "plain-type": "", "charset": "",
        "trickle": "timed out", "bomb": "larger than", "reset": "connection",
        "loop-a": "redirect", "page": "HTML page", "empty": "empty",
        "laughs": "", "xxe": "",  # parsed without expanding any entity (checked below)
        "missing": "404", "broken": "500", "gone": "410", "busy": "503",
        "tls": "TLS", "refused": "refused",
        "_urls": json.dumps({"tls": https_to_plain, "busy": busy.url("/busy.xml"),
                             "refused": f"http://127.0.0.1:{closed_port()}/feed.xml"}),
    }


def test_fetch_all_survives_every_hostile_server(tmp_path: Path, loopback: LoopbackServer,
                                                 hostile: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    special = json.loads(hostile.pop("_urls"))
    lines = []
    for source_id in hostile:
        url = special.get(source_id) or loopback.url(
            "/page.html" if source_id == "page" else f"/{source_id}.xml")
        lines.append(f"  - id: {source_id}\n    url: {url}\n")
    config_path = tmp_path / "syndicate.yaml"
    config_path.write_text(
        f"service:\n  database: sqlite:///{tmp_path}/store.db\n  read_timeout: 2\n"
        f"  connect_timeout: 2\n  max_body_bytes: 1MiB\n  fetch_per_host: 8\n"
        f"sources:\n{''.join(lines)}feeds:\n  - id: all\n")

    assert main(["--config", str(config_path), "fetch", "--all"]) == 0

    config = load_config(config_path)
    store = Store(config.service.database)
    try:
        statuses = {s.id: s for s in store.source_statuses()}
        for source_id, fragment in hostile.items():
            status = statuses[source_id]
            if fragment:
                assert status.last_error is not None, source_id
                assert fragment.lower() in status.last_error.lower(), (source_id,
                                                                       status.last_error)
            else:
                assert status.last_error is None, (source_id, status.last_error)
        titles = {s.title for s in store.select_stories(list(hostile), limit=100)}
        for name in ("alpha", "beta", "gamma", "delta"):
            assert f"Good story from {name}" in titles
        assert "Grüße aus Zürich" in titles  # the wrong charset was recovered
        everything = b"".join(
            r.body for f in ("rss", "atom", "json")
            if (r := store.rendered_feed("all", f)) is not None)
        assert b"root:" not in everything  # no external entity was read
        assert b"aaaaaaaaaaaaaaaaaaaa" not in everything  # no entity was expanded
    finally:
        store.close()
    err = capsys.readouterr().err
    assert "Traceback" not in err
