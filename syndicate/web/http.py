"""HTTP conditional-request and content-coding rules, as pure functions.

- If-None-Match (RFC 9110 §13.1.2): a list of entity tags or ``*``, compared weakly.
- If-Modified-Since (RFC 9110 §13.1.3): only evaluated when If-None-Match is absent.
- Accept-Encoding (RFC 9110 §12.5.3): gzip is used when listed with q > 0 (or via ``*``).
- Cache-Control max-age (RFC 9111 §5.2.2.1) from how often a feed changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def gzip_etag(etag: str) -> str:
    """The tag of the gzip representation of the bytes tagged ``etag``: '"abc"' → '"abc-gz"'."""
    return etag[:-1] + '-gz"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Does If-None-Match name ``etag``, or the tag of its gzip representation? Either way
    the client holds the current version (a cache may hold both representations)."""
    if if_none_match.strip() == "*":
        return True
    ours = {_opaque(etag), _opaque(gzip_etag(etag))}
    return any(_opaque(tag) in ours for tag in if_none_match.split(",") if tag.strip())


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith(("W/", "w/")) else tag


def not_modified(headers: dict[str, str], etag: str, last_modified: datetime) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    since = headers.get("if-modified-since")
    if since:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
    return False


def accepts_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    q_by_coding = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        q_by_coding[coding.strip().lower()] = q
    if "gzip" in q_by_coding:
        return q_by_coding["gzip"] > 0
    return q_by_coding.get("*", 0.0) > 0


MIN_MAX_AGE = 60
MAX_MAX_AGE = 3600
DEFAULT_MAX_AGE = 300  # a feed seen to change once: nothing to go by yet


def max_age(last_modified: datetime, previous_modified: datetime | None) -> int:
    """How long aggregators may reuse a feed: a quarter of the time between its last two
    changes, between a minute and an hour. A feed that changes every few minutes is
    re-polled about every minute; one that changes twice a day, hourly: polls follow what
    there is to fetch, and a client never misses more than a fraction of an interval."""
    if previous_modified is None:
        return DEFAULT_MAX_AGE
    interval = max(last_modified - previous_modified, timedelta(0))
    return int(min(max(interval.total_seconds() / 4, MIN_MAX_AGE), MAX_MAX_AGE))
