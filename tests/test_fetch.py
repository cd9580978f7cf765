"""fetch() against the real loopback server and real files: caching, redirects, limits, errors."""

from __future__ import annotations

import base64
import dataclasses
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import urllib3.exceptions

from syndicate.errors import FetchError, GoneError, HTTPStatusError
from syndicate.ingest.client import HttpClient
from syndicate.ingest.fetch import (
    FetchSettings,
    body_hash,
    fetch,
    parse_retry_after,
)
from syndicate.types import FetchResult, FetchState, NotModified
from tests.loopback import LoopbackHandler, LoopbackServer

MiB = 1 << 20
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
SETTINGS = FetchSettings(user_agent="syndicate-test/1.0", connect_timeout=2.0, read_timeout=5.0)


@pytest.fixture
def client() -> Iterator[HttpClient]:
    with HttpClient() as client:
        yield client


def fetched(url: str, client: HttpClient, state: FetchState | None = None) -> FetchResult:
    result = fetch(url, state, SETTINGS, client)
    assert isinstance(result, FetchResult)
    return result


def failure(url: str, client: HttpClient, **settings: float) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, None, dataclasses.replace(SETTINGS, **settings), client)
    return caught.value


# --- 200, conditional GET, unchanged bodies ---------------------------------------------------


def test_200_gives_body_validators_and_lower_case_headers(loopback, client):
    loopback.add_feed("/feed.xml", FEED)

    result = fetched(loopback.url("/feed.xml"), client)

    assert (result.url, result.status, result.content) == (loopback.url("/feed.xml"), 200, FEED)
    assert result.content_type == "application/rss+xml"
    assert result.etag is not None and result.etag == result.headers["etag"]
    assert result.last_modified is not None and result.last_modified.endswith(" GMT")
    assert result.permanent_url is None
    sent = loopback.requests[-1].headers
    assert sent["user-agent"] == "syndicate-test/1.0"
    assert sent["accept"].startswith("application/rss+xml, application/atom+xml")
    assert "if-none-match" not in sent and "if-modified-since" not in sent


def test_gzip_response_is_decoded(loopback, client):
    loopback.add_feed("/feed.xml", FEED * 50)

    result = fetched(loopback.url("/feed.xml"), client)

    assert loopback.requests[-1].headers["accept-encoding"] == "gzip, deflate"
    assert result.headers["content-encoding"] == "gzip"
    assert result.content == FEED * 50


@pytest.mark.parametrize(
    ("etag", "last_modified", "sent_headers"),
    [
        (True, True, {"if-none-match", "if-modified-since"}),
        (True, False, {"if-none-match"}),
        (False, True, {"if-modified-since"}),
    ],
)
def test_second_fetch_is_conditional_and_304_is_not_modified(
    loopback, client, etag, last_modified, sent_headers
):
    loopback.add_feed("/feed.xml", FEED, etag=etag, last_modified=last_modified)
    first = fetched(loopback.url("/feed.xml"), client)
    state = FetchState("s", etag=first.etag, last_modified=first.last_modified)

    second = fetch(loopback.url("/feed.xml"), state, SETTINGS, client)

    assert isinstance(second, NotModified)
    assert not second.body_unchanged
    assert (second.etag, second.last_modified) == (first.etag, first.last_modified)
    sent = loopback.requests[-1].headers
    assert {"if-none-match", "if-modified-since"} & sent.keys() == sent_headers
    assert sent.get("if-none-match") == (first.etag if etag else None)
    assert sent.get("if-modified-since") == (first.last_modified if last_modified else None)

    loopback.set_body("/feed.xml", FEED + b"\n")
    third = fetched(loopback.url("/feed.xml"), client, state)
    assert third.content == FEED + b"\n"
    assert (third.etag, third.last_modified) != (first.etag, first.last_modified)


def test_304_without_validators_keeps_the_stored_ones(loopback, client):
    loopback.add_status("/feed.xml", 304)
    state = FetchState("s", etag='"v1"', last_modified="Sun, 06 Nov 1994 08:49:37 GMT")

    result = fetch(loopback.url("/feed.xml"), state, SETTINGS, client)

    assert result == NotModified(
        url=loopback.url("/feed.xml"),
        etag='"v1"',
        last_modified="Sun, 06 Nov 1994 08:49:37 GMT",
        headers=result.headers,
    )


@pytest.mark.parametrize("validators", [False, True])
def test_200_with_the_stored_body_hash_is_not_modified(loopback, client, validators):
    loopback.add_feed("/feed.xml", FEED, etag=validators, last_modified=validators)
    state = FetchState("s", content_hash=body_hash(FEED))

    result = fetch(loopback.url("/feed.xml"), state, SETTINGS, client)

    assert isinstance(result, NotModified)
    assert result.body_unchanged
    assert (result.etag is not None, result.last_modified is not None) == (validators, validators)
    loopback.set_body("/feed.xml", FEED + b" ")
    assert fetched(loopback.url("/feed.xml"), client, state).content == FEED + b" "


# --- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "permanent"),
    [
        ((301,), True),
        ((308,), True),
        ((301, 308, 301), True),
        ((302,), False),
        ((307,), False),
        ((301, 302), False),
        ((307, 301), False),
    ],
)
def test_permanent_url_only_when_every_hop_is_permanent(loopback, client, codes, permanent):
    loopback.add_feed("/final.xml", FEED)
    hops = [f"/hop{i}" for i in range(len(codes))] + ["/final.xml"]
    for code, path, to in zip(codes, hops, hops[1:], strict=False):
        loopback.add_redirect(path, to, code)

    result = fetched(loopback.url("/hop0"), client)

    assert result.url == loopback.url("/final.xml")
    assert result.permanent_url == (loopback.url("/final.xml") if permanent else None)
    assert [r.path for r in loopback.requests] == hops


def test_relative_location_is_resolved_against_the_redirecting_url(loopback, client):
    loopback.add_feed("/new/feed.xml", FEED)
    loopback.add_status("/old/feed.xml", 301, {"Location": "../new/feed.xml"})

    result = fetched(loopback.url("/old/feed.xml"), client)

    assert result.permanent_url == loopback.url("/new/feed.xml")


def test_redirect_loop_is_named(loopback, client):
    loopback.add_redirect("/a", "/b", 302)
    loopback.add_redirect("/b", "/a", 302)

    error = failure(loopback.url("/a"), client)

    assert str(error).startswith("redirect loop: ")
    assert str(error).endswith(
        f"{loopback.url('/a')} -> {loopback.url('/b')} -> {loopback.url('/a')}"
    )


@pytest.mark.parametrize(("hops", "allowed"), [(5, True), (6, False)])
def test_at_most_max_redirects_are_followed(loopback, client, hops, allowed):
    loopback.add_feed(f"/r{hops}", FEED)
    for i in range(hops):
        loopback.add_redirect(f"/r{i}", f"/r{i + 1}", 301)

    if allowed:
        assert fetched(loopback.url("/r0"), client).url == loopback.url(f"/r{hops}")
    else:
        assert str(failure(loopback.url("/r0"), client)).startswith(
            "too many redirects (more than 5): "
        )
        assert len(loopback.requests) == 6  # the 7th URL was never asked for


def test_redirect_to_a_non_http_url_is_refused(loopback, client):
    loopback.add_redirect("/feed.xml", "file:///etc/passwd", 301)

    error = failure(loopback.url("/feed.xml"), client)

    assert (
        str(error)
        == f"redirect from {loopback.url('/feed.xml')} to a non-HTTP URL: file:///etc/passwd"
    )


# --- HTTP error statuses ----------------------------------------------------------------------

DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "message", "retry_after"),
    [
        (404, {}, HTTPStatusError, "HTTP 404 Not Found", None),
        (403, {}, HTTPStatusError, "HTTP 403 Forbidden", None),
        (500, {}, HTTPStatusError, "HTTP 500 Internal Server Error", None),
        (410, {}, GoneError, "HTTP 410 Gone: the feed was removed; polling stops", None),
        (
            429,
            {"Retry-After": "120"},
            HTTPStatusError,
            "HTTP 429 Too Many Requests (retry after 120 s)",
            120.0,
        ),
        (
            503,
            {"Date": DATE, "Retry-After": "Sun, 06 Nov 1994 08:51:07 GMT"},
            HTTPStatusError,
            "HTTP 503 Service Unavailable (retry after 90 s)",
            90.0,
        ),
        (503, {"Retry-After": "soon"}, HTTPStatusError, "HTTP 503 Service Unavailable", None),
        (
            300,
            {},
            HTTPStatusError,
            "HTTP 300 Multiple Choices without a usable Location header",
            None,
        ),
    ],
)
def test_error_statuses(loopback, client, status, headers, kind, message, retry_after):
    loopback.add_status("/feed.xml", status, headers, b"<html>error page</html>")

    error = failure(loopback.url("/feed.xml"), client)

    assert type(error) is kind
    assert (str(error), error.status, error.retry_after) == (message, status, retry_after)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 06 Nov 1994 08:51:07 GMT", 90.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:51:07 GMT", 90.0),  # obsolete RFC 850 form (RFC 9110 §5.6.7)
        ("Sun Nov  6 08:51:07 1994", 90.0),  # obsolete asctime form
        ("Sun, 06 Nov 1994 08:00:00 GMT", 0.0),  # in the past: retry now
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, seconds):
    now = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
    assert parse_retry_after(value, now) == seconds


# --- deadlines --------------------------------------------------------------------------------


def trickle(loopback: LoopbackServer):
    def handler(h: LoopbackHandler) -> None:
        h.send_response_only(200)
        h.send_header("Content-Length", "50")
        h.end_headers()
        for _ in range(50):  # 5 s in all: each byte well within any per-read timeout
            if loopback.closing.wait(0.1):
                return
            h.wfile.write(b"x")

    return handler


def trickle_until_close(loopback: LoopbackServer):
    """No Content-Length: the body ends when the connection does (http.client then keeps the
    socket on the response, not on the connection)."""

    def handler(h: LoopbackHandler) -> None:
        h.send_response_only(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        for _ in range(50):
            if loopback.closing.wait(0.1):
                return
            h.wfile.write(b"x")
            h.wfile.flush()

    return handler


def silent_after_headers(loopback: LoopbackServer):
    def handler(h: LoopbackHandler) -> None:
        h.send_response_only(200)
        h.send_header("Content-Length", "50")
        h.end_headers()
        loopback.closing.wait(10)

    return handler


def silent_before_headers(loopback: LoopbackServer):
    return lambda h: loopback.closing.wait(10)


@pytest.mark.parametrize(
    ("make_handler", "read_timeout"),
    [(trickle, 1.5), (trickle_until_close, 1.5), (silent_after_headers, 1.0),
     (silent_before_headers, 1.0)],
)
def test_whole_response_must_arrive_within_read_timeout(
    loopback, client, make_handler, read_timeout
):
    loopback.add_handler("/slow", make_handler(loopback))

    started = time.monotonic()
    error = failure(loopback.url("/slow"), client, read_timeout=read_timeout)
    elapsed = time.monotonic() - started

    assert str(error).startswith(f"read timed out after {read_timeout:g} s: 127.0.0.1:")
    assert read_timeout - 0.1 < elapsed < read_timeout + 1.0


@pytest.mark.skipif(
    sys.platform != "linux", reason="relies on Linux dropping SYNs to a full backlog"
)
def test_connect_timeout_is_reported_as_such(client):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]  # fill the accept queue; never accepted
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            time.sleep(0.05)
            error = failure(f"http://127.0.0.1:{port}/feed.xml", client, connect_timeout=0.5)
        finally:
            for filler in fillers:
                filler.close()

    assert str(error) == f"connect to 127.0.0.1:{port} timed out after 0.5 s"


# --- size cap on the decoded body -------------------------------------------------------------


@pytest.fixture(scope="module")
def zero_bombs() -> dict[str, bytes]:
    """200 MiB of zeros as a gzip body (~1 MB), a zlib (deflate) body, and gzip inside gzip."""

    def compress(wbits: int) -> bytes:
        compressor = zlib.compressobj(1, zlib.DEFLATED, wbits)
        zeros = bytes(MiB)
        return b"".join(compressor.compress(zeros) for _ in range(200)) + compressor.flush()

    gzip_bomb = compress(31)
    return {
        "gzip": gzip_bomb,
        "deflate": compress(15),
        "gzip, gzip": zlib.compress(gzip_bomb, wbits=31),
    }


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "gzip, gzip"])
def test_compression_bomb_is_stopped_at_the_cap_without_inflating_it(
    loopback, client, zero_bombs, encoding
):
    bomb = zero_bombs[encoding]
    loopback.add_handler("/bomb", lambda h: h.respond(200, bomb, {"Content-Encoding": encoding}))

    tracemalloc.start()
    try:
        error = failure(loopback.url("/bomb"), client, max_body_bytes=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (
        str(error) == "response body larger than 1 MiB (max_body_bytes); the download was stopped"
    )
    assert peak < 4 * MiB  # the cap plus a few decoded chunks, never the 200 MiB


def close_delimited(body: bytes):
    def handler(h: LoopbackHandler) -> None:
        h.send_response_only(200)
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True

    return handler


@pytest.mark.parametrize("declared", [True, False])
def test_plain_body_over_the_cap_is_refused(loopback, client, declared):
    body = b"x" * (MiB + 1)
    if declared:
        loopback.add_status("/big", 200, {"Content-Type": "application/xml"}, body)
    else:
        loopback.add_handler("/big", close_delimited(body))

    error = failure(loopback.url("/big"), client, max_body_bytes=MiB)

    assert str(error).startswith("response body larger than 1 MiB")


def test_body_exactly_at_the_cap_is_accepted(loopback, client):
    loopback.add_handler("/big", close_delimited(b"x" * MiB))

    result = fetch(
        loopback.url("/big"), None, dataclasses.replace(SETTINGS, max_body_bytes=MiB), client
    )

    assert isinstance(result, FetchResult) and len(result.content) == MiB


# --- broken connections and transport errors --------------------------------------------------


def closes_mid_body(h: LoopbackHandler) -> None:
    h.send_response_only(200)
    h.send_header("Content-Length", "1000")
    h.end_headers()
    h.wfile.write(b"x" * 100)
    h.close_connection = True


def closes_without_answering(h: LoopbackHandler) -> None:
    h.close_connection = True


def resets(h: LoopbackHandler) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def bad_gzip(h: LoopbackHandler) -> None:
    h.respond(200, b"this is not gzip", {"Content-Encoding": "gzip"})


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (closes_mid_body, "{host} closed the connection before the whole body was sent"),
        (closes_without_answering, "{host} closed the connection without answering"),
        (resets, "connection reset by {host}"),
        (bad_gzip, "{host} sent a body that does not match its Content-Encoding"),
    ],
)
def test_broken_responses(loopback, client, handler, message):
    loopback.add_handler("/feed.xml", handler)

    error = failure(loopback.url("/feed.xml"), client)

    assert str(error) == message.format(host=f"127.0.0.1:{loopback.port}")
    assert error.status is None


def test_connection_refused(client):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed again before the fetch: nothing listens

    error = failure(f"http://127.0.0.1:{port}/feed.xml", client)

    assert str(error) == f"connection refused by 127.0.0.1:{port}"
    assert isinstance(error.__cause__, urllib3.exceptions.NewConnectionError)


def test_dns_failure_names_the_host(client):
    # .invalid never resolves (RFC 6761 §6.4).
    error = failure("http://feeds.example.invalid/rss", client)

    assert str(error).startswith("DNS lookup failed for feeds.example.invalid: ")


def test_invalid_url(client):
    assert str(failure("http://", client)).startswith("invalid URL 'http://': ")


def test_tls_to_a_plain_http_server_fails_the_handshake(loopback, client):
    https_url = loopback.url("/feed.xml").replace("http://", "https://")

    error = failure(https_url, client)

    assert str(error).startswith(f"TLS handshake with 127.0.0.1:{loopback.port} failed: ")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_loopback(self_signed) -> Iterator[LoopbackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    with LoopbackServer(ssl_context=context) as server:
        server.add_feed("/feed.xml", FEED)
        yield server


def test_untrusted_certificate_is_reported(https_loopback, client):
    error = failure(https_loopback.url("/feed.xml"), client)

    assert str(error) == (
        f"TLS certificate of 127.0.0.1:{https_loopback.port} not accepted: self-signed certificate"
    )


def test_https_with_a_trusted_certificate(https_loopback, self_signed, monkeypatch):
    # How an operator trusts a private CA (the variable requests reads, kept for them): it
    # is set when syndicate starts, and read once, when the fetch client is made.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self_signed[0]))

    with HttpClient() as client:
        assert fetched(https_loopback.url("/feed.xml"), client).content == FEED


def test_a_directory_of_trusted_certificates(https_loopback, self_signed, tmp_path,
                                             monkeypatch):
    """REQUESTS_CA_BUNDLE may name a directory of hashed certificates (c_rehash), as requests
    allows."""
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(self_signed[0])],
        capture_output=True, text=True, check=True).stdout.strip()
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(self_signed[0], trusted / f"{subject_hash}.0")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(trusted))

    with HttpClient() as client:
        assert fetched(https_loopback.url("/feed.xml"), client).content == FEED


# --- local files ------------------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [False, True])
def test_local_file_is_read(tmp_path, client, as_url):
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    url = path.as_uri() if as_url else str(path)

    result = fetched(url, client)

    assert (result.url, result.status, result.content) == (url, 200, FEED)
    assert (result.etag, result.last_modified, result.content_type) == (
        None,
        None,
        "application/xml",
    )


def test_local_file_with_the_stored_hash_is_not_modified(tmp_path, client):
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)

    result = fetch(str(path), FetchState("s", content_hash=body_hash(FEED)), SETTINGS, client)

    assert result == NotModified(url=str(path), etag=None, last_modified=None, body_unchanged=True)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.xml", "local file not found: {path}"),
        (".", "local path is a directory, not a file: {path}"),
        ("big.xml", "local file {path} is larger than 1 KiB (max_body_bytes)"),
    ],
)
def test_local_file_problems_name_the_path(tmp_path, client, name, message):
    (tmp_path / "big.xml").write_bytes(b"x" * 1025)
    path = tmp_path / name

    error = failure(str(path), client, max_body_bytes=1024)

    assert str(error) == message.format(path=path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "feeds/local.xml",
            "not an http(s) URL, a file: URL or an absolute path: 'feeds/local.xml'",
        ),
        (
            "ftp://example.com/feed.xml",
            "not an http(s) URL, a file: URL or an absolute path: 'ftp://example.com/feed.xml'",
        ),
        (
            "file://example.com/feed.xml",
            "file URL names another host (example.com): file://example.com/feed.xml",
        ),
    ],
)
def test_unusable_urls(client, url, message):
    assert str(failure(url, client)) == message


def test_netrc_passwords_are_never_sent_to_feed_hosts(
        loopback: LoopbackServer, client: HttpClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login operator password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # where requests would look
    loopback.add_feed("/feed.xml", FEED)
    fetch(loopback.url("/feed.xml"), None, SETTINGS, client)
    assert "authorization" not in loopback.requests[-1].headers
    # and requests (which fetch no longer uses) would have: the netrc above is a live one.
    plain = requests.get(loopback.url("/feed.xml"), timeout=5)
    assert plain.request.headers.get("Authorization", "").startswith("Basic ")


def test_a_proxy_in_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch,
                                                  loopback: LoopbackServer) -> None:
    """A proxy named in the environment is used: here one that does not exist, so the fetch
    fails through it rather than going direct."""
    loopback.add_feed("/feed.xml", FEED)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard: nothing listens
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with HttpClient() as client:
        assert client.proxies == {"http": "http://127.0.0.1:9"}
        with pytest.raises(FetchError):
            fetch(loopback.url("/feed.xml"), None, SETTINGS, client)


def test_no_proxy_hosts_are_fetched_directly(monkeypatch: pytest.MonkeyPatch,
                                             loopback: LoopbackServer) -> None:
    loopback.add_feed("/feed.xml", FEED)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard: nothing listens
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with HttpClient() as client:
        assert fetched(loopback.url("/feed.xml"), client).content == FEED


def test_one_connection_serves_a_host_s_fetches_whatever_they_answer(
        loopback: LoopbackServer, client: HttpClient) -> None:
    """Keep-alive: a 200 read to its end, a 304 and a redirect all leave the connection
    usable for the next fetch of the host."""
    loopback.add_feed("/feed.xml", FEED)
    loopback.add_redirect("/old.xml", "/feed.xml", status=302)
    first = fetched(loopback.url("/feed.xml"), client)
    state = FetchState("s", etag=first.etag, last_modified=first.last_modified)
    for _ in range(3):
        assert isinstance(fetch(loopback.url("/feed.xml"), state, SETTINGS, client), NotModified)
    assert fetched(loopback.url("/old.xml"), client).content == FEED
    assert len(loopback.requests) == 6
    assert loopback.connections_accepted == 1


def test_an_unread_error_body_closes_its_connection(
        loopback: LoopbackServer, client: HttpClient) -> None:
    """A body left unread (an error page, here) could be any size: the connection is closed
    rather than drained, and the next fetch opens another."""
    loopback.add_status("/gone.xml", 404, body=b"x" * 100_000)
    loopback.add_feed("/feed.xml", FEED)
    failure(loopback.url("/gone.xml"), client)
    assert fetched(loopback.url("/feed.xml"), client).content == FEED
    assert loopback.connections_accepted == 2


def test_credentials_in_a_proxy_url_are_sent_to_the_proxy(
        monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer) -> None:
    """The loopback server plays the proxy: it receives the absolute URL, with the proxy's
    credentials in Proxy-Authorization (and never in the request for the feed's host)."""
    loopback.add_feed("http://feeds.example/feed.xml", FEED)
    monkeypatch.setenv("http_proxy", f"http://op%40home:s%3Acret@127.0.0.1:{loopback.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with HttpClient() as client:
        assert fetched("http://feeds.example/feed.xml", client).content == FEED
    sent = loopback.requests[-1]
    assert sent.path == "http://feeds.example/feed.xml"
    assert sent.headers["proxy-authorization"] == \
        "Basic " + base64.b64encode(b"op@home:s:cret").decode()
    assert "authorization" not in sent.headers


@pytest.mark.parametrize(("no_proxy", "url", "direct"), [
    ("10.0.0.0/8", "http://10.1.2.3/feed.xml", True),  # a CIDR range
    ("example.org:8080", "http://example.org:8080/feed.xml", True),  # host and port
    ("example.org:8080", "http://example.org/feed.xml", False),
    (".example.org", "http://news.example.org/feed.xml", True),
    ("", "http://news.example.org/feed.xml", False),
])
def test_no_proxy_is_read_as_requests_reads_it(monkeypatch: pytest.MonkeyPatch, no_proxy: str,
                                               url: str, direct: bool) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", no_proxy)
    with HttpClient() as client:
        assert (client.pool_for(url) is client.direct) == direct


def test_a_deadline_never_cuts_a_connection_another_fetch_reuses(
        loopback: LoopbackServer) -> None:
    """Source A is redirected (an empty body, so its connection goes back to the pool) to a
    server that never answers, and runs out of time while source B reuses that pooled
    connection for a slow but good answer. A's deadline must end A, not B."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing is ever sent
        loopback.add_redirect("/moved", f"http://127.0.0.1:{silent.getsockname()[1]}/feed")

        def slow(handler: LoopbackHandler) -> None:
            time.sleep(1.5)
            handler.respond(200, FEED)

        loopback.add_handler("/slow", slow)
        outcomes: dict[str, str] = {}

        def run(name: str, path: str, read_timeout: float) -> None:
            try:
                result = fetch(loopback.url(path), None,
                               dataclasses.replace(SETTINGS, read_timeout=read_timeout), client)
                outcomes[name] = f"{result.status}"  # type: ignore[union-attr]
            except FetchError as e:
                outcomes[name] = str(e)

        with HttpClient(connections_per_host=1) as client:
            a = threading.Thread(target=run, args=("a", "/moved", 1.0))
            a.start()
            time.sleep(0.3)  # A is waiting on the silent server; its first connection is free
            b = threading.Thread(target=run, args=("b", "/slow", 10.0))
            b.start()
            a.join(10)
            b.join(10)
    assert outcomes["a"].startswith("read timed out after 1 s")
    assert outcomes["b"] == "200"
    assert loopback.connections_accepted == 1  # B did reuse A's connection


def test_a_failed_connect_names_the_reason_not_a_timeout() -> None:
    """urllib3 makes NewConnectionError (a connect that fails at once: no route, network
    unreachable) a kind of ConnectTimeoutError; the message must not say "timed out"."""
    from syndicate.ingest.fetch import _Deadline, _describe_failure

    unreachable = OSError(101, "Network is unreachable")
    error = urllib3.exceptions.NewConnectionError(None, f"Failed to connect: {unreachable}")  # type: ignore[arg-type]
    error.__cause__ = unreachable
    message = str(_describe_failure(error, "http://192.0.2.1/feed", SETTINGS, _Deadline(5)))
    assert message == "could not connect to 192.0.2.1:80: Network is unreachable"
