"""Retrieve one source's feed body over HTTP(S) or from a local file, within hard limits.

``fetch(url, state, settings, client)`` returns a ``FetchResult`` (a body to parse) or a
``NotModified`` value, and raises only ``FetchError`` and its subclasses. The rules it follows:

- Conditional GET (RFC 9110 §13.1): If-None-Match from the stored ETag and If-Modified-Since
  from the stored Last-Modified, both sent exactly as the server gave them. A 304 keeps the
  stored validators the server did not repeat (RFC 9111 §4.3.4). A 200 whose body hashes to
  the stored ``content_hash`` is also ``NotModified`` (``body_unchanged=True``), so servers
  without validators do not cost a re-parse.
- Redirects are followed here, not by urllib3: to see the whole chain, and never to read a
  redirect's body (it could be any size; its connection is kept only when it has none). At most
  ``max_redirects``, a loop is named as one, and ``permanent_url`` is set only when every hop
  was permanent (301/308); one 302/307 makes the move temporary (RFC 9110 §15.4).
- Limits: ``connect_timeout`` per connection, and ``read_timeout`` as a wall-clock deadline for
  the whole exchange, redirects, headers and body included. urllib3's read timeout bounds
  each socket read only, so a server trickling a byte a second would never trip it; a timer
  shuts the socket down at the deadline, which wakes any blocked read. ``max_body_bytes`` caps
  the *decoded* body: it is counted as it streams and the transfer is dropped as soon as the cap
  is passed. urllib3 >= 2.6 bounds each decoded chunk by the amount asked for (it passes
  ``max_length`` to zlib), so one 64 KiB read cannot inflate a gzip bomb to gigabytes.
- Failures are mapped at this boundary to messages an operator can act on (refused, DNS, reset,
  which timeout and after how long, TLS, "HTTP 404 Not Found"); 410 is ``GoneError``; 429 and
  503 carry ``retry_after`` seconds parsed from Retry-After (RFC 9110 §10.2.3).
- Local sources (an absolute path or a ``file:`` URL) are read under the same size cap; they
  have no validators, so only the body hash says "unchanged".
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import http.client
import mimetypes
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import urllib3
import urllib3.exceptions
from urllib3.util import Timeout

from syndicate.errors import FetchError, GoneError, HTTPStatusError, causes
from syndicate.ingest.client import HttpClient
from syndicate.ingest.pacing import parse_http_date, parse_retry_after
from syndicate.types import FetchResult, FetchState, NotModified

# Feed types first; generic XML/JSON (what many servers label feeds with) lower; anything last,
# because a feed served as text/html is still worth a parse attempt (RFC 9110 §12.5.1).
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, "
    "application/json;q=0.8, */*;q=0.5"
)
# Only codings urllib3 decodes without optional packages, and whose decoded size it bounds.
ACCEPT_ENCODING = "gzip, deflate"

_CHUNK_BYTES = 64 * 1024  # largest decoded piece held at once beyond the body itself
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_IO_ERRORS = (
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


@dataclass(frozen=True)
class FetchSettings:
    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # total deadline for the whole response incl. body
    max_body_bytes: int = 16 * 1024 * 1024  # enforced on the DECOMPRESSED body
    max_redirects: int = 5


def body_hash(content: bytes) -> str:
    """The hash stored as ``FetchState.content_hash`` for a body (hex SHA-256)."""
    return hashlib.sha256(content).hexdigest()


def fetch(
    url: str,
    state: FetchState | None,
    settings: FetchSettings,
    client: HttpClient,
) -> FetchResult | NotModified:
    """Retrieve ``url`` (http(s), an absolute path or a file: URL); see the module docstring."""
    if url.startswith(("http://", "https://")):
        return _fetch_http(url, state, settings, client)
    return _fetch_local(url, state, settings)


# --- HTTP -------------------------------------------------------------------------------------


def _base_headers(settings: FetchSettings) -> dict[str, str]:
    return {
        "User-Agent": settings.user_agent,
        "Accept": FEED_ACCEPT,
        "Accept-Encoding": ACCEPT_ENCODING,
    }


def _conditional_headers(state: FetchState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


class _Deadline:
    """A wall-clock limit on one fetch; when it passes, the socket being read is shut down."""

    def __init__(self, seconds: float) -> None:
        self.ends_at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._response: urllib3.HTTPResponse | None = None  # the exchange being read
        self._expired = False
        self._finished = False

    def __enter__(self) -> _Deadline:
        _WATCHDOG.watch(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def finish(self) -> None:
        with self._lock:
            self._finished = True  # a late expiry must not touch a socket back in the pool

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._finished

    def remaining(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    def watch(self, response: urllib3.HTTPResponse) -> None:
        """Make ``response``'s connection the one shut down when time runs out."""
        with self._lock:
            self._response = response
            if self._expired:
                self._shut_down()

    def release(self, response: _Response) -> None:
        """Give ``response``'s connection back (``_Response.release``); from then on this
        deadline never touches it, since another fetch may be using it."""
        with self._lock:
            if self._response is response.raw:
                self._response = None
            response.release()

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._expired = True
            self._shut_down()

    def _shut_down(self) -> None:
        response = self._response
        # urllib3 gives a connection back to its pool by itself when the body has been read
        # to its end (then ``connection`` is None): no longer ours to shut down.
        if response is None or response.connection is None:
            return
        sock = _socket_of(response)
        if sock is not None:
            _shut_down(sock)


class _Watchdog:
    """One thread that expires every fetch's deadline in time. (A timer thread per fetch
    cost more than a whole 304 exchange when a thousand sources answer 304.)"""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._counter = 0  # ties in the heap never compare deadlines

    def watch(self, deadline: _Deadline) -> None:
        with self._wake:
            self._counter += 1
            heapq.heappush(self._heap, (deadline.ends_at, self._counter, deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-deadlines",
                                                daemon=True)
                self._thread.start()
            if self._heap[0][2] is deadline:  # only an earlier deadline changes its sleep
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)  # done in time: forget it
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                _, _, due = heapq.heappop(self._heap)
            due.expire()


_WATCHDOG = _Watchdog()


def _socket_of(response: urllib3.BaseHTTPResponse) -> socket.socket | None:
    connection = getattr(response, "connection", None)  # urllib3's HTTPResponse.connection
    sock = getattr(connection, "sock", None)
    if not isinstance(sock, socket.socket):
        # A response that ends with the connection (no Content-Length, "Connection: close"):
        # http.client hands the socket over to the response and forgets it on the connection,
        # so it is only reachable through the response's file object.
        file = getattr(getattr(response, "_fp", None), "fp", None)
        sock = getattr(getattr(file, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _shut_down(sock: socket.socket) -> None:
    # The plain socket's shutdown, even for TLS: it only needs to wake the blocked reader, and
    # SSLSocket.shutdown would also drop the TLS state under the reader's feet. OSError: the
    # socket is already closed, so nothing is left to wake.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Response:
    """A urllib3 response and the URL that answered (urllib3's own ``url`` is only a path)."""

    __slots__ = ("raw", "url", "status", "headers")

    def __init__(self, raw: urllib3.HTTPResponse, url: str) -> None:
        self.raw, self.url, self.status, self.headers = raw, url, raw.status, raw.headers

    def release(self) -> None:
        """Give the connection back to its pool when the body was read to its end (a 304's
        empty one included), for the next feed of the host; otherwise close it: what is left
        unread could be any size."""
        raw = self.raw
        if not raw.isclosed():
            if raw.length_remaining == 0:
                raw.drain_conn()
            else:
                raw.close()
        raw.release_conn()


def _fetch_http(
    url: str, state: FetchState | None, settings: FetchSettings, client: HttpClient
) -> FetchResult | NotModified:
    headers = _base_headers(settings) | _conditional_headers(state)
    with _Deadline(settings.read_timeout) as deadline:
        response, redirects = _follow_redirects(url, headers, settings, client, deadline)
        try:
            permanent_url = _permanent_url(response.url, redirects)
            if response.status == HTTPStatus.NOT_MODIFIED:
                deadline.finish()  # from here on the connection may serve another fetch
                return _not_modified(response, state, permanent_url)
            if not 200 <= response.status < 300:
                raise _status_error(response)
            content = _read_body(response, settings, deadline)
        finally:
            deadline.release(response)
    return _result(response, content, state, permanent_url)


def _follow_redirects(
    url: str,
    headers: Mapping[str, str],
    settings: FetchSettings,
    client: HttpClient,
    deadline: _Deadline,
) -> tuple[_Response, list[int]]:
    """GET ``url`` and each Location after it; the final response (unread) and the hops' codes."""
    chain = [url]
    statuses: list[int] = []
    while True:
        response = _get(chain[-1], headers, settings, client, deadline)
        target = _redirect_target(response)
        if target is None:
            return response, statuses
        deadline.release(response)  # its body is not read: it could be any size
        statuses.append(response.status)
        chain.append(_redirect_url(chain[-1], target))
        if chain[-1] in chain[:-1]:
            raise FetchError("redirect loop: " + " -> ".join(chain))
        if len(statuses) > settings.max_redirects:
            raise FetchError(
                f"too many redirects (more than {settings.max_redirects}): " + " -> ".join(chain)
            )


def _redirect_target(response: _Response) -> str | None:
    """Location of a redirect (RFC 9110 §15.4), else None (a 3xx without one is an error)."""
    location = response.headers.get("Location")
    if response.status not in _REDIRECTS or location is None:
        return None
    # http.client decodes header bytes as Latin-1; a server that sends a raw non-ASCII URL
    # sends it in UTF-8 far more often (browsers and requests read it so too).
    try:
        return location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return location


def _redirect_url(current: str, location: str) -> str:
    # Location may be relative to the URL that answered (RFC 9110 §10.2.2), and may carry
    # characters a request line cannot: quoted as requests quotes them (imported only here,
    # on the rare redirect).
    from requests.utils import requote_uri

    target = requote_uri(urljoin(current, location))
    if not target.startswith(("http://", "https://")):
        raise FetchError(f"redirect from {current} to a non-HTTP URL: {target}")
    return target


def _get(
    url: str,
    headers: Mapping[str, str],
    settings: FetchSettings,
    client: HttpClient,
    deadline: _Deadline,
) -> _Response:
    """One GET without following redirects; headers read, body left on the wire."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise _read_timeout(url, settings)
    connect_timeout = min(settings.connect_timeout, remaining)
    try:
        raw = client.pool_for(url).urlopen(
            "GET", url, headers=headers, redirect=False, retries=False,
            preload_content=False, decode_content=True,
            timeout=Timeout(connect=connect_timeout, read=remaining))
    except _IO_ERRORS as e:
        raise _describe_failure(e, url, settings, deadline, connect_timeout) from e
    assert isinstance(raw, urllib3.HTTPResponse)  # what urlopen gives without preloading
    deadline.watch(raw)
    return _Response(raw, url)


def _permanent_url(final_url: str, redirects: list[int]) -> str | None:
    """Where the source now lives, if every hop said so for good (RFC 9110 §15.4.2, §15.4.9)."""
    if redirects and all(code in _PERMANENT_REDIRECTS for code in redirects):
        return final_url
    return None


def _response_headers(response: _Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.itermerged()}


def _not_modified(
    response: _Response, state: FetchState | None, permanent_url: str | None
) -> NotModified:
    # A 304 should repeat the validators, but when it does not, the stored ones still describe
    # the stored representation (RFC 9111 §4.3.4).
    return NotModified(
        url=response.url,
        etag=response.headers.get("ETag") or (state.etag if state else None),
        last_modified=response.headers.get("Last-Modified")
        or (state.last_modified if state else None),
        headers=_response_headers(response),
        permanent_url=permanent_url,
    )


def _result(
    response: _Response,
    content: bytes,
    state: FetchState | None,
    permanent_url: str | None,
) -> FetchResult | NotModified:
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    headers = _response_headers(response)
    if state is not None and state.content_hash == body_hash(content):
        return NotModified(
            url=response.url,
            etag=etag,
            last_modified=last_modified,
            headers=headers,
            permanent_url=permanent_url,
            body_unchanged=True,
        )
    return FetchResult(
        url=response.url,
        status=response.status,
        content=content,
        content_type=response.headers.get("Content-Type"),
        etag=etag,
        last_modified=last_modified,
        headers=headers,
        permanent_url=permanent_url,
    )


def _read_body(response: _Response, settings: FetchSettings, deadline: _Deadline) -> bytes:
    """The decoded body, streamed under the size cap and the deadline."""
    cap = settings.max_body_bytes
    if _declared_identity_length(response) > cap:
        raise _too_large(cap)  # no need to read what the server says will not fit
    body = bytearray()
    try:
        for chunk in response.raw.stream(_CHUNK_BYTES, decode_content=True):
            body += chunk
            if len(body) > cap:
                raise _too_large(cap)
            if deadline.expired:
                raise _read_timeout(response.url, settings)
    except _IO_ERRORS as e:
        raise _describe_failure(e, response.url, settings, deadline) from e
    return bytes(body)


def _declared_identity_length(response: _Response) -> int:
    """Content-Length when it is the decoded size too (no Content-Encoding), else 0."""
    if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return 0
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isascii() and length.isdigit() else 0


def _too_large(cap: int) -> FetchError:
    return FetchError(
        f"response body larger than {_format_size(cap)} (max_body_bytes); the download was stopped"
    )


def _format_size(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


# --- HTTP errors ------------------------------------------------------------------------------


def _status_error(response: _Response) -> HTTPStatusError:
    status = response.status
    if status == HTTPStatus.GONE:
        return GoneError("HTTP 410 Gone: the feed was removed; polling stops", status=status)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), _server_now(response))
    message = f"HTTP {status} {_reason(response)}".rstrip()
    if 300 <= status < 400:
        message += " without a usable Location header"
    if retry_after is not None:
        message += f" (retry after {retry_after:g} s)"
    return HTTPStatusError(message, status=status, retry_after=retry_after)


def _reason(response: _Response) -> str:
    try:
        return HTTPStatus(response.status).phrase
    except ValueError:
        return response.raw.reason or ""


def _server_now(response: _Response) -> datetime:
    """The response's Date, else our clock: Retry-After dates are the server's clock."""
    return parse_http_date(response.headers.get("Date", "")) or datetime.now(UTC)


def _read_timeout(url: str, settings: FetchSettings) -> FetchError:
    return FetchError(
        f"read timed out after {settings.read_timeout:g} s: {_host_port(url)} did not send the "
        "whole response in time (read_timeout)"
    )


def _describe_failure(
    error: BaseException,
    url: str,
    settings: FetchSettings,
    deadline: _Deadline,
    connect_timeout: float | None = None,
) -> FetchError:
    """One operator-readable FetchError for a urllib3/socket failure."""
    where = _host_port(url)
    found_causes = list(causes(error))

    def found(*kinds: type[BaseException]) -> BaseException | None:
        return next((c for c in found_causes if isinstance(c, kinds)), None)

    if deadline.expired or found(urllib3.exceptions.ReadTimeoutError):
        return _read_timeout(url, settings)
    if resolution := found(urllib3.exceptions.NameResolutionError, socket.gaierror):
        reason = next((c for c in found_causes if isinstance(c, socket.gaierror)), resolution)
        return FetchError(f"DNS lookup failed for {urlsplit(url).hostname}: {_strerror(reason)}")
    if found(ConnectionRefusedError):
        return FetchError(f"connection refused by {where}")
    if unreachable := found(urllib3.exceptions.NewConnectionError):
        # (urllib3 makes this a kind of ConnectTimeoutError, though it fails at once.)
        reason = next((c for c in found_causes if isinstance(c, OSError)), unreachable)
        return FetchError(f"could not connect to {where}: {_strerror(reason)}")
    if found(urllib3.exceptions.ConnectTimeoutError):
        seconds = connect_timeout if connect_timeout is not None else settings.connect_timeout
        return FetchError(f"connect to {where} timed out after {seconds:g} s")
    if certificate := found(ssl.SSLCertVerificationError):
        detail = getattr(certificate, "verify_message", None) or _strerror(certificate)
        return FetchError(f"TLS certificate of {where} not accepted: {detail}")
    if tls := found(ssl.SSLError, urllib3.exceptions.SSLError):
        return FetchError(f"TLS handshake with {where} failed: {_strerror(tls)}")
    if found(http.client.RemoteDisconnected):  # a ConnectionResetError too: test it first
        return FetchError(f"{where} closed the connection without answering")
    if found(ConnectionResetError):
        return FetchError(f"connection reset by {where}")
    if found(http.client.IncompleteRead, urllib3.exceptions.IncompleteRead):
        return FetchError(f"{where} closed the connection before the whole body was sent")
    if found(urllib3.exceptions.DecodeError):
        return FetchError(f"{where} sent a body that does not match its Content-Encoding")
    if found(urllib3.exceptions.LocationValueError, urllib3.exceptions.URLSchemeUnknown):
        return FetchError(f"invalid URL {url!r}: {error}")
    return FetchError(f"request to {where} failed: {error}")


def _strerror(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is not a number: show what was given
        return parts.netloc
    return f"{parts.hostname}:{port}"


# --- local files ------------------------------------------------------------------------------


def _fetch_local(
    url: str, state: FetchState | None, settings: FetchSettings
) -> FetchResult | NotModified:
    path = _local_path(url)
    content = _read_file(path, settings.max_body_bytes)
    if state is not None and state.content_hash == body_hash(content):
        return NotModified(url=url, etag=None, last_modified=None, body_unchanged=True)
    return FetchResult(
        url=url,
        status=200,  # "read in full", so callers treat files and HTTP alike
        content=content,
        content_type=mimetypes.guess_type(path.name)[0],
        etag=None,
        last_modified=None,
    )


def _local_path(url: str) -> Path:
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):  # RFC 8089 §2: only this machine's files
            raise FetchError(f"file URL names another host ({parts.netloc}): {url}")
        path = Path(url2pathname(parts.path))
    else:
        path = Path(url)
    if not path.is_absolute():
        raise FetchError(f"not an http(s) URL, a file: URL or an absolute path: {url!r}")
    return path


def _read_file(path: Path, cap: int) -> bytes:
    try:
        with path.open("rb") as file:
            content = file.read(cap + 1)  # one byte more than allowed tells "too large"
    except FileNotFoundError as e:
        raise FetchError(f"local file not found: {path}") from e
    except IsADirectoryError as e:
        raise FetchError(f"local path is a directory, not a file: {path}") from e
    except PermissionError as e:
        raise FetchError(f"cannot read local file {path}: permission denied") from e
    except OSError as e:
        raise FetchError(f"cannot read local file {path}: {_strerror(e)}") from e
    if len(content) > cap:
        raise FetchError(f"local file {path} is larger than {_format_size(cap)} (max_body_bytes)")
    return content
