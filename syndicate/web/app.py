"""The ASGI application: rendered feeds, the index page, source health, and a health check.

Per request the work is a dictionary look-up, a header comparison and a write of bytes and
headers that were prepared once per change (identity and gzip, 200 and 304). ``FeedCache``
holds them in memory and refreshes them from the store in a worker thread every couple of
seconds, so that every web process sees what the ingest process published, and neither the
database nor rendering is ever on a request's path.

``syndicate run`` and ``serve`` start several web processes (``app_from_environment``); in
``run`` the scheduler lives in the parent process and writes a heartbeat to the store, which
``/healthz`` reads (see ``Liveness``).

Routes: ``/feeds/<id>.rss|atom|json|html`` (GET, HEAD), ``/feeds/<id>/archive/<n>.atom|rss``
(RFC 5005 archive pages, see ``publish``), ``/`` (index with autodiscovery links),
``/feeds.opml``, ``/sources.opml``, ``/status`` (each source's health), ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..config import file_mtime, load_config
from ..errors import ConfigError
from ..ingest.pacing import UNHEALTHY_AFTER
from ..orphans import exit_with_parent
from ..publish import render_archive, rendered_feed
from ..publish.people import OPML_CONTENT_TYPE, feeds_opml, page_url, sources_opml
from ..publish.render import CONTENT_TYPES, feed_url
from ..store import SCHEDULER_HEARTBEAT, Store
from ..types import Config, FeedConfig, RenderedFeed
from .http import accepts_gzip, etag_matches, gzip_etag, http_date, max_age, not_modified

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FORMAT_BY_EXTENSION = {"rss": "rss", "atom": "atom", "json": "json", "html": "html"}
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Response:
    """One complete answer: status, headers (for ASGI) and the same headers as one block of
    wire bytes, each line ending in CRLF (for ``fastpath``, which adds the status line, Date
    and the blank line), and the body."""

    status: int
    headers: Headers
    header_block: bytes
    body: bytes

    @classmethod
    def of(cls, status: int, headers: Headers, body: bytes) -> Response:
        block = b"".join(b"%s: %s\r\n" % pair for pair in headers)
        return cls(status, headers, block, body)


@dataclass(frozen=True)
class Served:
    """One rendering, ready to send: complete 200 and 304 responses in identity and gzip
    (RFC 9110 §8.8.3: each representation has its own strong tag)."""

    feed: RenderedFeed
    etag: bytes
    gzip_etag: bytes
    ok: Response
    ok_gzip: Response
    not_modified: Response
    not_modified_gzip: Response

    @classmethod
    def of(cls, feed: RenderedFeed, caching: bytes | None = None) -> Served:
        etag, gzipped = feed.etag.encode(), gzip_etag(feed.etag).encode()
        common = [(b"last-modified", http_date(feed.last_modified).encode()),
                  (b"cache-control", caching or cache_control(feed)),
                  (b"vary", b"Accept-Encoding")]
        content_type = feed.content_type.encode()
        return cls(
            feed, etag, gzipped,
            ok=Response.of(200, [(b"content-type", content_type),
                                 (b"content-length", b"%d" % len(feed.body)),
                                 (b"etag", etag), *common], feed.body),
            ok_gzip=Response.of(200, [(b"content-type", content_type),
                                      (b"content-length", b"%d" % len(feed.gzip_body)),
                                      (b"content-encoding", b"gzip"), (b"etag", gzipped),
                                      *common], feed.gzip_body),
            not_modified=Response.of(304, [(b"etag", etag), *common], b""),
            not_modified_gzip=Response.of(304, [(b"etag", gzipped), *common], b""))

    def is_current(self, if_none_match: bytes | None, if_modified_since: bytes | None) -> bool:
        """Does the client hold this version? (The usual case, a poller sending back the tag
        it was given, is one comparison of bytes.)"""
        if if_none_match is not None:
            if if_none_match == self.etag or if_none_match == self.gzip_etag:
                return True
            return etag_matches(if_none_match.decode("latin-1"), self.feed.etag)
        if if_modified_since is not None:
            return not_modified({"if-modified-since": if_modified_since.decode("latin-1")},
                                self.feed.etag, self.feed.last_modified)
        return False


def cache_control(feed: RenderedFeed) -> bytes:
    """Public, for as long as ``http.max_age`` says from how often this feed changes; a
    client revalidates with the ETag after that."""
    return b"public, max-age=%d" % max_age(feed.last_modified, feed.previous_modified)


class FeedCache:
    """Rendered feeds in memory, keyed by their file name ("all.rss"); reloaded when the
    ETag changes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._feeds: dict[str, Served] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Served | None:
        return self._feeds.get(name)

    def refresh(self) -> int:
        """Load renderings whose ETag changed; return how many were reloaded."""
        with self._lock:
            stored = {f"{feed_id}.{fmt}": (feed_id, fmt, etag)
                      for (feed_id, fmt), etag in self.store.rendered_etags().items()}
            feeds = {k: v for k, v in self._feeds.items() if k in stored}
            reloaded = 0
            for name, (feed_id, fmt, etag) in stored.items():
                if name in feeds and feeds[name].feed.etag == etag:
                    continue
                feed = self.store.rendered_feed(feed_id, fmt)
                if feed is not None:
                    feeds[name] = Served.of(feed)
                    reloaded += 1
            self._feeds = feeds  # one reference swap: readers never see a half-built dict
            return reloaded


class ArchiveCache:
    """Archive pages (RFC 5005) rendered when asked for, in a worker thread, and kept while
    no story changes (``Store.stories_version``) or for a minute at least; the least recently
    read go first."""

    MAX_PAGES = 64
    # During an ingest the stories version moves with every commit; a page rendered this
    # recently is served as it is meanwhile (its items may lag a new outlet by that long).
    FRESH_SECONDS = 60.0
    # A full page keeps its stories; only a story gaining an outlet changes it.
    CACHING = b"public, max-age=86400"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.version = 0  # the stories version, re-read by App.refresh
        # (feed id, page, format) → (stories version, rendering, when rendered)
        self._pages: OrderedDict[tuple[str, int, str], tuple[int, Served, float]] = \
            OrderedDict()

    async def get(self, config: Config, feed: FeedConfig, page: int, fmt: str
                  ) -> Served | None:
        key = (feed.id, page, fmt)
        cached = self._pages.get(key)
        if cached is not None and (cached[0] == self.version
                                   or time.monotonic() - cached[2] < self.FRESH_SECONDS):
            self._pages.move_to_end(key)
            return cached[1]
        version = self.version
        page_render = await asyncio.to_thread(render_archive, self.store, config, feed, page,
                                              fmt)
        if page_render is None:
            return None
        body, updated = page_render
        if cached is not None and cached[1].feed.body == body:
            served = cached[1]  # the same bytes: the same ETag and Last-Modified
        else:
            # Last-Modified is the page's own last change: the same in every web process.
            rendered = rendered_feed(f"{feed.id}/archive/{page}", fmt, body, updated)
            served = Served.of(rendered, self.CACHING)
        self._pages[key] = (version, served, time.monotonic())
        self._pages.move_to_end(key)
        while len(self._pages) > self.MAX_PAGES:
            self._pages.popitem(last=False)
        return served


class Liveness:
    """What is wrong with the scheduler of ``syndicate run``, from the heartbeat it writes to
    the store (``schedule.Scheduler``): None when it ticks as it should."""

    STALL_SECONDS = 120.0  # no tick for this long (a hung publish, a dead thread) is a problem

    def __init__(self, store: Store) -> None:
        self.store = store
        self.started = time.monotonic()
        self.problem: str | None = None

    def check(self, now: datetime) -> None:
        """Read the heartbeat (in a worker thread: it is a query)."""
        beat = self.store.meta_value(SCHEDULER_HEARTBEAT)
        if beat is None:
            waited = time.monotonic() - self.started
            self.problem = (f"scheduler has not started for {waited:.0f} s"
                            if waited > self.STALL_SECONDS else None)
            return
        state = json.loads(beat)
        if state.get("stopped"):
            self.problem = "scheduler stopped"
            return
        silent = (now - datetime.fromisoformat(state["at"])).total_seconds()
        self.problem = (f"scheduler has not ticked for {silent:.0f} s"
                        if silent > self.STALL_SECONDS else state.get("problem"))


class App:
    REFRESH_SECONDS = 2.0

    def __init__(self, config: Config, store: Store, cache: FeedCache | None = None,
                 liveness: Liveness | None = None) -> None:
        self.config = config
        self.store = store
        self.cache = cache or FeedCache(store)
        self.archives = ArchiveCache(store)
        # In `run`, the scheduler's heartbeat; in `serve` (and tests), nothing is checked.
        self.liveness = liveness
        self._config_mtime = file_mtime(config.path)
        self._refresher: asyncio.Task[None] | None = None
        self._gzip_by_header: dict[bytes, bool] = {}

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
            problem = self.liveness.problem if self.liveness else None
            body = json.dumps({"status": problem or "ok"}).encode() + b"\n"
            await _respond(send, 503 if problem else 200, body, b"application/json", head=head,
                           extra=[(b"cache-control", b"no-store")])
        else:
            await _respond(send, 404, b"not found\n", b"text/plain; charset=utf-8", head=head)

    async def _feed(self, scope: Scope, send: Send, name: str, head: bool) -> None:
        served = self.cache.get(name)
        if served is None and "/archive/" in name:
            served = await self._archive_page(name)
        if served is None:
            await _respond(send, 404, b"no such feed\n", b"text/plain; charset=utf-8", head=head)
            return
        response = self.answer(served, scope["headers"])
        await send({"type": "http.response.start", "status": response.status,
                    "headers": response.headers})
        await send({"type": "http.response.body", "body": b"" if head else response.body})

    def answer(self, served: Served, headers: Headers) -> Response:
        """The response to a GET of ``served`` with these request headers (names in lower
        case, as ASGI servers and httptools give them)."""
        if_none_match = if_modified_since = accept_encoding = None
        for key, value in headers:
            if key == b"if-none-match":
                if_none_match = value
            elif key == b"accept-encoding":
                accept_encoding = value
            elif key == b"if-modified-since":
                if_modified_since = value
        gzipped = self._accepts_gzip(accept_encoding)
        if served.is_current(if_none_match, if_modified_since):
            return served.not_modified_gzip if gzipped else served.not_modified
        return served.ok_gzip if gzipped else served.ok

    async def _archive_page(self, name: str) -> Served | None:
        """``<feed id>/archive/<page>.<format>``, when the feed has that full page."""
        feed_id, _, page_name = name.partition("/archive/")
        number, _, fmt = page_name.partition(".")
        if not number.isdigit() or len(number) > 9:
            return None
        feed = next((f for f in self.config.feeds if f.id == feed_id), None)
        if feed is None:
            return None
        return await self.archives.get(self.config, feed, int(number), fmt)

    def _accepts_gzip(self, header: bytes | None) -> bool:
        if header is None:
            return False
        known = self._gzip_by_header.get(header)
        if known is None:  # clients send a handful of distinct values: remember a few
            known = accepts_gzip(header.decode("latin-1"))
            if len(self._gzip_by_header) < 256:
                self._gzip_by_header[header] = known
        return known

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(self.refresh)
                self._refresher = asyncio.create_task(self._refresh_forever())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._refresher:
                    self._refresher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._refresher
                await send({"type": "lifespan.shutdown.complete"})
                return

    def refresh(self) -> None:
        """What a web process re-reads every few seconds: the rendered feeds, the scheduler's
        heartbeat, and the config file (for the index, OPML and status pages) when it
        changed. A broken edit keeps the running config; the scheduler logs the problems."""
        self.cache.refresh()
        self.archives.version = self.store.stories_version()
        if self.liveness is not None:
            self.liveness.check(datetime.now(UTC))
        mtime = file_mtime(self.config.path)
        if mtime != self._config_mtime:
            self._config_mtime = mtime
            with contextlib.suppress(ConfigError, OSError):
                self.config = load_config(self.config.path)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self.refresh)
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


async def _respond(send: Send, status: int, body: bytes, content_type: bytes, *,
                   head: bool = False, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


# Environment of the web processes that ``syndicate run`` and ``serve`` start.
CONFIG_ENV = "SYNDICATE_CONFIG"
SCHEDULER_ENV = "SYNDICATE_WEB_CHECKS_SCHEDULER"  # "1" in run: /healthz reads the heartbeat
LOG_LEVEL_ENV = "SYNDICATE_LOG_LEVEL"


def app_from_environment() -> App:
    """The app of one web process (uvicorn imports this factory in each worker)."""
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    exit_with_parent()  # a web process must not outlive run/serve and keep the port
    config = load_config(os.environ[CONFIG_ENV])
    store = Store(config.service.database)
    liveness = Liveness(store) if os.environ.get(SCHEDULER_ENV) == "1" else None
    return App(config, store, liveness=liveness)
