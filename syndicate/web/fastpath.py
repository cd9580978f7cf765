"""Rendered feeds answered inside uvicorn's HTTP protocol, without an ASGI round trip.

Nearly every request a feed server sees is an aggregator's GET of a feed it polls. Through
ASGI each one costs uvicorn a scope, a cycle object, an event, a task, two ``send`` calls that
check every header with two regular expressions, and two writes to the socket. Here, when the
request line and headers are in, ``FeedProtocol`` looks the feed up in the app's ``FeedCache``
and, when it is there, writes the prepared status line, headers and body (``app.Response``)
with one ``writelines`` (one ``writev``), and goes on with the connection as uvicorn would
after a response. Everything else (pages, archives, unknown paths, other methods, upgrades,
``Expect: 100-continue``, a request pipelined behind one still being answered) goes through
uvicorn and the ASGI app as before, so both paths give the same answers.

This subclasses a class of uvicorn that is not its public API: pyproject pins uvicorn to the
release series it was written against, and ``tests/test_web_fastpath.py`` checks the protocol
on the wire (keep-alive, pipelining, HTTP/1.0, HEAD) against that release.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from .app import App

FEEDS_PREFIX = b"/feeds/"
_GET, _HEAD = b"GET", b"HEAD"


class FeedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering GET and HEAD of a rendered feed itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A wrapped app (uvicorn adds middleware for some settings) gets no fast path.
        self.feed_app = self.app if isinstance(self.app, App) else None
        self._defaults: object = None  # uvicorn's default headers (Date) ...
        self._default_block = b""  # ... and the same as wire bytes
        self._answered: RequestResponseCycle | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # An answer given here armed the keep-alive timer; uvicorn disarms it when data
        # arrives, but a request that came in the same read (pipelined) must not be cut off
        # by it while the app answers.
        self._unset_keepalive_if_required()

    def on_headers_complete(self) -> None:
        if not self._answer_from_memory():
            super().on_headers_complete()

    def _answer_from_memory(self) -> bool:
        app = self.feed_app
        if app is None or (self.cycle is not None and not self.cycle.response_complete):
            return False  # an earlier request is still being answered: answers keep order
        if self.flow.write_paused or self.transport.is_closing():
            # The client is not reading what it asked for: uvicorn's path waits for it (and
            # stops reading its requests) instead of queueing answer after answer.
            return False
        method = self.parser.get_method()
        if (method != _GET and method != _HEAD) or self.expect_100_continue \
                or self.parser.should_upgrade() or _has_body(self.headers):
            return False
        path = self.url.partition(b"?")[0]
        if not path.startswith(FEEDS_PREFIX) or b"%" in path:
            return False
        served = app.cache.get(path[len(FEEDS_PREFIX):].decode("latin-1"))
        if served is None:
            return False
        response = app.answer(served, self.headers)
        keep_alive = self.parser.get_http_version() != "1.0" and \
            self.parser.should_keep_alive()
        head = [STATUS_LINE[response.status], self._default_headers(), response.header_block,
                b"\r\n" if keep_alive else b"connection: close\r\n\r\n"]
        if method == _GET and response.body:
            head.append(response.body)
        self.transport.writelines(head)
        # From here on as uvicorn after a response: the parser's later callbacks for this
        # request (a body, its end) see a complete cycle and ignore it.
        self.cycle = self._answered_cycle()
        if not keep_alive:
            self.transport.close()
        self.on_response_complete()
        return True

    def _default_headers(self) -> bytes:
        """Date (uvicorn renews the list every second) and any configured headers."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults:
            self._defaults = defaults
            self._default_block = b"".join(b"%s: %s\r\n" % pair for pair in defaults)
        return self._default_block

    def _answered_cycle(self) -> RequestResponseCycle:
        """A finished cycle that stands for every request this connection answered here."""
        if self._answered is None:
            answered = RequestResponseCycle(
                scope=self.scope, transport=self.transport, flow=self.flow,
                logger=self.logger, access_logger=self.access_logger, access_log=False,
                default_headers=[], message_event=asyncio.Event(), expect_100_continue=False,
                keep_alive=False, on_response=lambda: None)
            answered.response_started = answered.response_complete = True
            answered.more_body = False
            self._answered = answered
        return self._answered


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Does the request carry a body? Pollers never send one; a request that does is left to
    uvicorn, which reads (or rejects) it before answering."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


# The uvicorn settings of `syndicate run` and `serve`, and of the tests' server. The fast path
# needs the app unwrapped: no proxy-headers middleware (nothing uses the client's address)
# and no access log (a feed server's log would be one line per poll). Answers given here
# skip uvicorn's limit_concurrency check, which is therefore left unset.
UVICORN_SETTINGS: dict[str, Any] = {
    "http": FeedProtocol, "loop": "uvloop", "lifespan": "on", "access_log": False,
    "log_level": "warning", "server_header": False, "proxy_headers": False}
