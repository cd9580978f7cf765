"""A real HTTP server on 127.0.0.1 for tests: static feeds with validators, and misbehaviour.

``loopback`` (a pytest fixture, function scope) starts a ``LoopbackServer`` on an ephemeral port
in a background thread and shuts it down after the test::

    def test_something(loopback):
        loopback.add_feed("/feed.xml", b"<rss .../>")
        url = loopback.url("/feed.xml")
        ...
        assert loopback.requests[-1].headers["if-none-match"] == '"..."'

What a static feed (``add_feed``) does, as an origin server should:

- a strong ETag computed from the body (a different one for the gzip representation, RFC 9110
  §8.8.3) and a Last-Modified date that moves forward whenever ``set_body`` changes the body;
- 304 Not Modified for a matching If-None-Match, or, only when If-None-Match is absent, for an
  If-Modified-Since no earlier than Last-Modified (RFC 9110 §13.1.2, §13.1.3, §13.2.2);
- gzip when the client accepts it (``Vary: Accept-Encoding``), HEAD without a body.

Anything else is a handler: ``add_handler(path, fn)`` where ``fn(handler)`` writes the whole
response itself (slow trickles, resets, bombs). ``handler.respond(...)`` writes an ordinary one.
The server speaks HTTP/1.1 with keep-alive, so a handler that sends no Content-Length must set
``handler.close_connection = True``; handlers that loop should watch ``server.closing`` so the
fixture can stop them. Every request is recorded in ``server.requests``. Nothing is ever
printed: request logs and handler exceptions (a client hanging up mid-write) are swallowed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Handler = Callable[["LoopbackHandler"], None]

_JOIN_SECONDS = 5.0  # how long stop() waits for handler threads before leaving them (daemons)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as requested, query string included
    headers: dict[str, str]  # names in lower case
    body: bytes  # the request body when the client sent a Content-Length, else b""


class LoopbackHandler(BaseHTTPRequestHandler):
    """Dispatches every method to the route registered for the path."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, so clients' connection pools are exercised
    body: bytes = b""

    def respond(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """Write a complete response with a Content-Length (no body on HEAD or 304).

        A Date header is added unless ``headers`` has one (tests of date arithmetic set it).
        """
        headers = dict(headers or {})
        self.send_response_only(status)
        if "date" not in {name.lower() for name in headers}:
            self.send_header("Date", self.date_time_string())
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != HTTPStatus.NOT_MODIFIED:
            self.wfile.write(body)

    def _dispatch(self) -> None:
        self.body = self._read_request_body()
        self.server.owner.record(self)
        route = self.server.owner.route(self.path)
        if route is None:
            self.respond(404, b"not found\n", {"Content-Type": "text/plain"})
        else:
            route(self)

    def _read_request_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests must not write to stderr


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() closes connections and joins with a bound instead

    def __init__(self, owner: LoopbackServer, ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self._ssl_context = ssl_context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.handler_threads: list[threading.Thread] = []
        super().__init__(("127.0.0.1", 0), LoopbackHandler)

    def get_request(self) -> tuple[Any, Any]:
        conn, address = super().get_request()
        if self._ssl_context is not None:
            conn = self._ssl_context.wrap_socket(conn, server_side=True)
        return conn, address

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        self.handler_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def disconnect_all(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections or slow writes."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-response is what many tests do on purpose


class _StaticFeed:
    """One body with its validators; set_body replaces all three together."""

    def __init__(self, body: bytes, content_type: str, etag: bool, last_modified: bool) -> None:
        self.content_type = content_type
        self.use_etag = etag
        self.use_last_modified = last_modified
        self.lock = threading.Lock()
        self.body = b""
        self.gzip_body = b""
        self.etag = ""
        self.modified = datetime(2000, 1, 1, tzinfo=UTC)
        self.set_body(body)

    def set_body(self, body: bytes) -> None:
        with self.lock:
            self.body = body
            self.gzip_body = gzip.compress(body, mtime=0)
            self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            # HTTP dates have one-second resolution: a change within the same second must still
            # move Last-Modified, or If-Modified-Since would wrongly match (RFC 9110 §8.8.2).
            now = datetime.now(UTC).replace(microsecond=0)
            self.modified = max(now, self.modified + timedelta(seconds=1))

    def serve(self, handler: LoopbackHandler) -> None:
        if handler.command not in ("GET", "HEAD"):
            handler.respond(405, headers={"Allow": "GET, HEAD"})
            return
        with self.lock:
            body, gzip_body, etag, modified = self.body, self.gzip_body, self.etag, self.modified
        use_gzip = _accepts_gzip(handler.headers.get("Accept-Encoding", ""))
        tag = etag[:-1] + '-gzip"' if use_gzip else etag
        headers = {"Content-Type": self.content_type, "Vary": "Accept-Encoding"}
        if self.use_etag:
            headers["ETag"] = tag
        if self.use_last_modified:
            headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        if self._not_modified(handler, (etag, etag[:-1] + '-gzip"'), modified):
            handler.respond(304, headers=headers)
            return
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        handler.respond(200, gzip_body if use_gzip else body, headers)

    def _not_modified(
        self, handler: LoopbackHandler, tags: tuple[str, ...], modified: datetime
    ) -> bool:
        if_none_match = handler.headers.get("If-None-Match")
        if if_none_match is not None:
            # Weak comparison for If-None-Match (RFC 9110 §13.1.2): W/ prefixes do not matter.
            if not self.use_etag:
                return False
            offered = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return "*" in offered or bool(offered & set(tags))
        if_modified_since = handler.headers.get("If-Modified-Since")
        if if_modified_since is None or not self.use_last_modified:
            return False
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # an invalid date is ignored (RFC 9110 §13.1.3)
        return since.tzinfo is not None and modified <= since


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class LoopbackServer:
    """An HTTP(S) server on 127.0.0.1 with an ephemeral port, serving registered routes."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._scheme = "https" if ssl_context is not None else "http"
        self._routes: dict[str, Handler] = {}
        self._feeds: dict[str, _StaticFeed] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.closing = threading.Event()  # set when stop() begins: looping handlers return
        self._httpd = _Server(self, ssl_context)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.disconnect_all()
        for thread in self._httpd.handler_threads:
            thread.join(_JOIN_SECONDS)
        self._thread.join(_JOIN_SECONDS)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    @property
    def connections_accepted(self) -> int:
        """How many connections clients have opened so far (keep-alive reuses one)."""
        return len(self._httpd.handler_threads)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- routes -------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with "/") on this server."""
        return f"{self._scheme}://127.0.0.1:{self.port}{path}"

    def add_handler(self, path: str, fn: Handler) -> None:
        """Route ``path`` (query string optional) to ``fn``, which writes the whole response."""
        with self._lock:
            self._routes[path] = fn

    def add_feed(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/rss+xml",
        etag: bool = True,
        last_modified: bool = True,
    ) -> None:
        """Serve a static body with validators, conditional GET, gzip and HEAD."""
        feed = _StaticFeed(body, content_type, etag, last_modified)
        with self._lock:
            self._feeds[path] = feed
        self.add_handler(path, feed.serve)

    def set_body(self, path: str, body: bytes) -> None:
        """Replace a feed's body; its ETag and Last-Modified change with it."""
        with self._lock:
            feed = self._feeds[path]
        feed.set_body(body)

    def add_status(
        self,
        path: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """Answer every request for ``path`` with ``status``, ``headers`` and ``body``."""
        self.add_handler(path, lambda handler: handler.respond(status, body, headers))

    def add_redirect(self, path: str, to: str, status: int = 301) -> None:
        """Redirect ``path`` to ``to`` (a path on this server, or an absolute URL)."""
        location = self.url(to) if to.startswith("/") else to
        self.add_status(path, status, {"Location": location})

    def route(self, path: str) -> Handler | None:
        with self._lock:
            return self._routes.get(path) or self._routes.get(path.partition("?")[0])

    # --- what the clients sent ----------------------------------------------------------------

    def record(self, handler: LoopbackHandler) -> None:
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=handler.body,
        )
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A started LoopbackServer, stopped (connections closed, handlers woken) after the test."""
    with LoopbackServer() as server:
        yield server
