"""Conditional GET and content negotiation rules of the web front (RFC 9110)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syndicate.web.http import (
    DEFAULT_MAX_AGE,
    MAX_MAX_AGE,
    MIN_MAX_AGE,
    accepts_gzip,
    etag_matches,
    http_date,
    max_age,
    not_modified,
)

ETAG = '"abc123"'
LAST_MODIFIED = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "matches"), [
    ('"abc123"', True),
    ('W/"abc123"', True),  # If-None-Match uses the weak comparison (§13.1.2)
    ('"zzz", "abc123"', True),
    ('"zzz",W/"abc123"', True),
    ("*", True),
    ('"abc"', False),
    ("", False),
    ("abc123", False),  # an unquoted tag is not our tag
])
def test_etag_matches(header: str, matches: bool) -> None:
    assert etag_matches(header, ETAG) is matches


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, False),
    ({"if-none-match": ETAG}, True),
    ({"if-modified-since": http_date(LAST_MODIFIED)}, True),
    ({"if-modified-since": "Wed, 25 Nov 2026 11:00:00 GMT"}, True),
    ({"if-modified-since": "Wed, 25 Nov 2026 09:59:59 GMT"}, False),
    ({"if-modified-since": "garbage"}, False),
    # If-None-Match present: If-Modified-Since must be ignored (§13.1.3)
    ({"if-none-match": '"other"', "if-modified-since": http_date(LAST_MODIFIED)}, False),
])
def test_not_modified(headers: dict[str, str], expected: bool) -> None:
    assert not_modified(headers, ETAG, LAST_MODIFIED) is expected


@pytest.mark.parametrize(("header", "gzip"), [
    (None, False),
    ("gzip", True),
    ("gzip, deflate, br", True),
    ("GZIP;q=0.5", True),
    ("gzip;q=0", False),
    ("identity", False),
    ("*", True),
    ("*, gzip;q=0", False),
    ("br;q=1, gzip;q=bogus", False),
])
def test_accepts_gzip(header: str | None, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip


def test_gzip_representation_has_its_own_tag_and_both_revalidate() -> None:
    from syndicate.web.http import gzip_etag

    assert gzip_etag(ETAG) == '"abc123-gz"'
    assert etag_matches('"abc123-gz"', ETAG)
    assert etag_matches('W/"abc123-gz"', ETAG)
    assert not etag_matches('"abc123-g"', ETAG)


@pytest.mark.parametrize(("interval", "expected"), [
    (None, DEFAULT_MAX_AGE),  # changed once: nothing to go by
    (timedelta(minutes=2), MIN_MAX_AGE),  # a busy feed: revalidate every minute
    (timedelta(minutes=20), 300),  # a quarter of the interval
    (timedelta(days=1), MAX_MAX_AGE),  # a quiet one: at most an hour stale
    (timedelta(seconds=-5), MIN_MAX_AGE),  # a clock step back never gives less than a minute
])
def test_max_age_follows_how_often_the_feed_changes(interval: timedelta | None,
                                                    expected: int) -> None:
    last = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert max_age(last, None if interval is None else last - interval) == expected
