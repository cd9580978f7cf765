"""The feed fast path (``web.fastpath.FeedProtocol``) on the wire, under the real uvicorn.

Raw sockets, because what is checked is the connection itself: keep-alive, pipelined requests
answered in order across both paths, HTTP/1.0 closing, HEAD, and that a feed request never
reaches the ASGI app while every other request still does, with the same answers."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from syndicate.config import parse_config
from syndicate.publish import rendered_feed
from syndicate.store import Store
from syndicate.types import Config
from syndicate.web import App
from tests.webserver import running_app

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
BODY = b"<?xml version='1.0'?><rss version='2.0'><channel><title>fast</title></channel></rss>"
BIG = BODY.replace(b"<title>", b"<title>" + b"long " * 120_000)  # 600 KB: fills the socket


class RecordingApp(App):
    """Our app, noting the path of every HTTP request that reaches it through ASGI."""

    def __init__(self, config: Config, store: Store) -> None:
        super().__init__(config, store)
        self.asgi_paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.asgi_paths.append(scope["path"])
        await super().__call__(scope, receive, send)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One client connection that reads responses one at a time off the byte stream."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read(self, *, head: bool = False) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "connection closed before a response"
        block, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = block.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"header {name} sent twice"
            headers[name.lower()] = value.strip()
        status = int(status_line.split()[1])
        length = 0 if head or status == 304 else int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "connection closed inside a body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(status, headers, body)

    def closed_by_server(self) -> bool:
        return not self.buffer and not self._fill()

    def close(self) -> None:
        self.sock.close()


def request(path: str, method: str = "GET", version: str = "1.1", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: test"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(params=[{}])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[RecordingApp, str]]:
    """The app under uvicorn; a test may change uvicorn's settings by parametrizing this
    fixture indirectly."""
    (tmp_path / "feed.xml").write_bytes(BODY)
    config = parse_config(f"""
service:
  base_url: https://feeds.example
  database: sqlite:///{tmp_path}/store.db
sources:
  - id: one
    url: {tmp_path}/feed.xml
feeds:
  - id: news
    title: News
""", tmp_path / "syndicate.yaml")
    store = Store(config.service.database)
    store.save_rendered(rendered_feed("news", "rss", BODY, T0))
    store.save_rendered(rendered_feed("news", "atom", BIG, T0))
    with running_app(config, store, RecordingApp, **request.param) as (app, base):
        assert isinstance(app, RecordingApp)
        yield app, base
    store.close()


@pytest.fixture
def connection(served: tuple[RecordingApp, str]) -> Iterator[Connection]:
    conn = Connection(served[1])
    yield conn
    conn.close()


def asgi_answer(app: App, method: str, path: str, headers: dict[str, str]) -> Answer:
    """What the ASGI app itself answers, called directly."""
    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body = sent
    return Answer(start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
                  body["body"])


@pytest.mark.parametrize(("method", "headers"), [
    ("GET", {}),
    ("GET", {"Accept-Encoding": "gzip, br"}),
    ("GET", {"If-None-Match": "the-etag"}),
    ("GET", {"If-None-Match": "the-etag", "Accept-Encoding": "gzip"}),
    ("GET", {"If-Modified-Since": "Wed, 25 Nov 2026 10:00:00 GMT"}),
    ("GET", {"If-None-Match": '"stale"'}),
    ("HEAD", {}),
])
def test_feed_requests_are_answered_without_asgi_and_as_asgi_would(
        served: tuple[RecordingApp, str], connection: Connection, method: str,
        headers: dict[str, str]) -> None:
    app, _ = served
    etag = app.cache.get("news.rss").etag.decode()  # type: ignore[union-attr]
    headers = {k: v.replace("the-etag", etag) for k, v in headers.items()}
    connection.send(request("/feeds/news.rss", method, **headers))
    answer = connection.read(head=method == "HEAD")
    assert app.asgi_paths == []
    expected = asgi_answer(app, method, "/feeds/news.rss", headers)
    date = answer.headers.pop("date")
    assert abs((parsedate_to_datetime(date) - datetime.now(UTC)).total_seconds()) < 5
    assert (answer.status, answer.headers, answer.body) == \
        (expected.status, expected.headers, expected.body)
    if method == "HEAD":
        assert answer.headers["content-length"] == str(len(BODY))


def test_pipelined_requests_are_answered_in_order_across_both_paths(
        served: tuple[RecordingApp, str], connection: Connection) -> None:
    app, _ = served
    connection.send(request("/feeds/news.rss") + request("/healthz")
                    + request("/feeds/news.rss", Accept_Encoding="gzip")
                    + request("/feeds/news.rss?utm_source=x", "HEAD")
                    + request("/feeds/missing.rss") + request("/feeds/news.rss"))
    answers = [connection.read(), connection.read(), connection.read(),
               connection.read(head=True), connection.read(), connection.read()]
    assert [a.status for a in answers] == [200, 200, 200, 200, 404, 200]
    assert answers[0].body == BODY == answers[5].body
    assert answers[1].body == b'{"status": "ok"}\n'
    assert gzip.decompress(answers[2].body) == BODY
    assert answers[3].body == b""
    assert answers[4].body == b"no such feed\n"
    # The first feed was answered at once; the requests that arrived behind the health check
    # waited for it in uvicorn's queue, so they went through ASGI too.
    assert app.asgi_paths[0] == "/healthz" and "/feeds/missing.rss" in app.asgi_paths
    assert not any("connection" in a.headers for a in answers)


def test_pipelined_feed_requests_are_all_answered_here(
        served: tuple[RecordingApp, str], connection: Connection) -> None:
    app, _ = served
    connection.send(b"".join(request("/feeds/news.rss", Accept_Encoding=coding)
                             for coding in ("gzip", "identity") * 50))
    bodies = [connection.read().body for _ in range(100)]
    assert bodies == [gzip.compress(BODY, mtime=0, compresslevel=6), BODY] * 50
    assert app.asgi_paths == []


def test_http_1_0_gets_its_answer_and_the_connection_closed(connection: Connection) -> None:
    connection.send(request("/feeds/news.rss", version="1.0"))
    answer = connection.read()
    assert (answer.status, answer.body) == (200, BODY)
    assert answer.headers["connection"] == "close"
    assert connection.closed_by_server()


def test_connection_close_from_the_client_is_honoured(connection: Connection) -> None:
    connection.send(request("/feeds/news.rss", Connection="close"))
    answer = connection.read()
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert connection.closed_by_server()


@pytest.mark.parametrize(("method", "path", "status", "body"), [
    ("POST", "/feeds/news.rss", 405, b"method not allowed\n"),
    ("GET", "/feeds/news%2Erss", 200, BODY),  # percent-encoded: uvicorn decodes, ASGI answers
    ("GET", "/feeds/news.json", 404, b"no such feed\n"),
])
def test_other_requests_go_through_asgi(
        served: tuple[RecordingApp, str], connection: Connection, method: str, path: str,
        status: int, body: bytes) -> None:
    app, _ = served
    connection.send(request(path, method, Content_Length="0"))
    answer = connection.read()
    assert (answer.status, answer.body) == (status, body)
    assert len(app.asgi_paths) == 1


def test_a_get_with_a_body_is_left_to_uvicorn(
        served: tuple[RecordingApp, str], connection: Connection) -> None:
    """uvicorn reads (or rejects) a body before the answer goes out; the next request on the
    connection is answered as usual."""
    app, _ = served
    connection.send(b"GET /feeds/news.rss HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                    + request("/feeds/news.rss", "HEAD"))
    assert connection.read().body == BODY
    assert connection.read(head=True).status == 200
    assert app.asgi_paths[0] == "/feeds/news.rss"  # the HEAD queued behind it, too


def test_a_malformed_chunked_body_gets_only_uvicorn_s_400(connection: Connection) -> None:
    connection.send(b"GET /feeds/news.rss HTTP/1.1\r\nHost: t\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
    answer = connection.read()
    assert answer.status == 400
    assert connection.closed_by_server()


def test_a_client_that_does_not_read_gets_no_more_answers_queued(
        served: tuple[RecordingApp, str], connection: Connection) -> None:
    """Pipelined polls of a 600 KB feed from a client that reads nothing: once the socket's
    buffer is full the rest wait in uvicorn (which stops reading), instead of one answer
    after another piling up in memory. Every answer still arrives, in order."""
    app, _ = served
    connection.send(b"".join(request("/feeds/news.atom") for _ in range(100)))
    time.sleep(0.5)  # the server answers what it can meanwhile
    assert app.asgi_paths, "every answer was queued at once"
    bodies = [connection.read().body for _ in range(100)]
    assert bodies == [BIG] * 100


class SlowStatusApp(RecordingApp):
    def _status_page(self) -> bytes:
        time.sleep(1.5)  # longer than the keep-alive timeout below
        return super()._status_page()


@pytest.mark.parametrize("served", [{"timeout_keep_alive": 1}], indirect=True)
def test_a_slow_answer_after_a_fast_one_is_not_cut_off_by_keep_alive(
        served: tuple[RecordingApp, str]) -> None:
    app, base = served
    app.__class__ = SlowStatusApp  # the same app, with a slow status page
    conn = Connection(base)
    try:
        conn.send(request("/feeds/news.rss") + request("/status"))
        assert conn.read().body == BODY
        status = conn.read()
        assert status.status == 200 and b"<h1>Sources</h1>" in status.body
    finally:
        conn.close()
