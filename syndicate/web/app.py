"""The ASGI application: rendered feeds, the index page, source health, and a health check.

Per request the work is a dictionary look-up, a header comparison and a write of bytes that
were rendered once per change (identity and gzip). ``FeedCache`` holds those bytes in memory
and refreshes them from the store in a worker thread — every few seconds (so ``serve``
processes see what another process published) and at once when told (``run``) — so neither
the database nor rendering is ever on a request's path.

Routes: ``/feeds/<id>.rss|atom|json`` (GET, HEAD), ``/`` (index with autodiscovery links),
``/status`` (each source's health), ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from ..ingest.pacing import UNHEALTHY_AFTER
from ..publish.people import OPML_CONTENT_TYPE, feeds_opml, page_url, sources_opml
from ..publish.render import CONTENT_TYPES, feed_url
from ..store import Store
from ..types import Config, RenderedFeed
from .http import accepts_gzip, gzip_etag, http_date, not_modified

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Aggregators may reuse a feed for 5 minutes; must-revalidate is implied by the ETag dance.
FEED_CACHE_CONTROL = b"public, max-age=300"
_FORMAT_BY_EXTENSION = {"rss": "rss", "atom": "atom", "json": "json", "html": "html"}


class FeedCache:
    """Rendered feeds in memory, keyed by (feed id, format); reloaded when the ETag changes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._feeds: dict[tuple[str, str], RenderedFeed] = {}
        self._lock = threading.Lock()

    def get(self, feed_id: str, fmt: str) -> RenderedFeed | None:
        return self._feeds.get((feed_id, fmt))

    def refresh(self) -> int:
        """Load renderings whose ETag changed; return how many were reloaded."""
        with self._lock:
            stored = self.store.rendered_etags()
            feeds = {k: v for k, v in self._feeds.items() if k in stored}
            reloaded = 0
            for key, etag in stored.items():
                if key in feeds and feeds[key].etag == etag:
                    continue
                feed = self.store.rendered_feed(*key)
                if feed is not None:
                    feeds[key] = feed
                    reloaded += 1
            self._feeds = feeds  # one reference swap: readers never see a half-built dict
            return reloaded


class App:
    REFRESH_SECONDS = 2.0

    def __init__(self, config: Config, store: Store, cache: FeedCache | None = None) -> None:
        self.config = config
        self.store = store
        self.cache = cache or FeedCache(store)
        self._refresher: asyncio.Task[None] | None = None
        # In `run`, what the scheduler says is wrong with it (None: healthy); in `serve`, no
        # scheduler runs in this process and nothing is checked.
        self.liveness: Callable[[], str | None] = lambda: None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", b"text/plain; charset=utf-8",
                           extra=[(b"allow", b"GET, HEAD")])
            return
        path: str = scope["path"]
        head = method == "HEAD"
        if path.startswith("/feeds/"):
            await self._feed(scope, send, path[len("/feeds/"):], head)
        elif path == "/":
            await _respond(send, 200, self._index_page(), b"text/html; charset=utf-8", head=head)
        elif path == "/status":
            body = await asyncio.to_thread(self._status_page)
            await _respond(send, 200, body, b"text/html; charset=utf-8", head=head,
                           extra=[(b"cache-control", b"no-cache")])
        elif path in ("/feeds.opml", "/sources.opml"):
            make = feeds_opml if path == "/feeds.opml" else sources_opml
            await _respond(send, 200, make(self.config), OPML_CONTENT_TYPE.encode(), head=head,
                           extra=[(b"cache-control", b"public, max-age=300")])
        elif path == "/healthz":
            problem = self.liveness()
            body = json.dumps({"status": problem or "ok"}).encode() + b"\n"
            await _respond(send, 503 if problem else 200, body, b"application/json", head=head,
                           extra=[(b"cache-control", b"no-store")])
        else:
            await _respond(send, 404, b"not found\n", b"text/plain; charset=utf-8", head=head)

    async def _feed(self, scope: Scope, send: Send, name: str, head: bool) -> None:
        feed_id, _, extension = name.rpartition(".")
        fmt = _FORMAT_BY_EXTENSION.get(extension)
        feed = self.cache.get(feed_id, fmt) if fmt else None
        if feed is None:
            await _respond(send, 404, b"no such feed\n", b"text/plain; charset=utf-8", head=head)
            return
        headers = _headers(scope)
        gzipped = accepts_gzip(headers.get("accept-encoding"))
        # RFC 9110 §8.8.3: the gzip and identity representations get different strong tags.
        etag = gzip_etag(feed.etag) if gzipped else feed.etag
        common = [
            (b"etag", etag.encode()),
            (b"last-modified", http_date(feed.last_modified).encode()),
            (b"cache-control", FEED_CACHE_CONTROL),
            (b"vary", b"Accept-Encoding"),
        ]
        if not_modified(headers, feed.etag, feed.last_modified):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        if gzipped:
            common.append((b"content-encoding", b"gzip"))
        body = feed.gzip_body if gzipped else feed.body
        await _respond(send, 200, body, feed.content_type.encode(), head=head, extra=common)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(self.cache.refresh)
                self._refresher = asyncio.create_task(self._refresh_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._refresher:
                    self._refresher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._refresher
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self.cache.refresh)
            except Exception:  # a database hiccup must not stop serving what we have
                log.exception("could not refresh rendered feeds")

    def _index_page(self) -> bytes:
        service = self.config.service
        links, rows = [], []
        for feed in self.config.feeds:
            title = html.escape(feed.title)
            for fmt in ("atom", "rss", "json"):
                links.append(
                    f'<link rel="alternate" type="{CONTENT_TYPES[fmt].split(";")[0]}" '
                    f'title="{title} ({fmt.upper()})" '
                    f'href="{html.escape(feed_url(service, feed.id, fmt))}">')
            formats = " · ".join(
                f'<a href="{html.escape(feed_url(service, feed.id, fmt))}">{fmt.upper()}</a>'
                for fmt in ("atom", "rss", "json"))
            page = html.escape(page_url(service, feed.id))
            rows.append(f'<li><strong><a href="{page}">{title}</a></strong> — '
                        f"{html.escape(feed.description)}<br>{formats}</li>")
        return _page("syndicate", "\n".join(links),
                     "<h1>Feeds</h1>\n<ul>\n" + "\n".join(rows) + "\n</ul>\n"
                     '<p><a href="/feeds.opml">OPML of these feeds</a> · '
                     '<a href="/sources.opml">OPML of our sources</a> · '
                     '<a href="/status">Source status</a></p>')

    def _status_page(self) -> bytes:
        configured = {s.id for s in self.config.sources}
        rows = []
        for s in self.store.source_statuses():
            if s.id not in configured:
                continue
            health = "ok" if s.error_count == 0 else (
                "unhealthy" if s.error_count >= UNHEALTHY_AFTER else "failing")
            if s.last_fetched_at is None:
                health = "pending"
            cells = [
                s.id, health, s.site_title or "", str(s.entry_count), _when(s.last_success_at),
                _when(s.next_fetch_at), str(s.error_count),
                (s.last_error or "") + (f" (moved permanently to {s.permanent_url})"
                                        if s.permanent_url else ""),
                s.warning or "",
            ]
            rows.append(f'<tr class="{health}">' + "".join(
                f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in (
            "source", "health", "title", "entries", "last success", "next fetch", "errors",
            "last error", "warning"))
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        return _page("syndicate: sources", "", "<h1>Sources</h1>\n" + table)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}"
          "table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;"
          "padding:.25rem .5rem;text-align:left;vertical-align:top}"
          "tr.unhealthy{background:#fdd}tr.failing{background:#ffd}")


def _page(title: str, head: str, body: str) -> bytes:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style>\n{head}\n</head>"
            f"<body>\n{body}\n</body></html>\n").encode()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _respond(send: Send, status: int, body: bytes, content_type: bytes, *,
                   head: bool = False, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})

