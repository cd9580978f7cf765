"""When to fetch a source next. Pure: functions of the facts and ``now`` (and a random draw).

After a success the next fetch is the longest of what anyone asked for — the configured
interval, the feed's RSS ``<ttl>``, the response's ``Cache-Control: max-age`` (RFC 9111
§5.2.2.1) or ``Expires`` (RFC 9111 §5.3), and ``Retry-After`` (RFC 9110 §10.2.3) — clamped
between ``FLOOR`` and ``CEILING``, plus up to 10% jitter so that sources configured together,
or a restart, do not fire all at once.

A permanent redirect (301/308, RFC 9110 §15.4.2 and §15.4.9) moves the URL we fetch only
after ``REDIRECT_CONFIRMATIONS`` consecutive fetches saw the same target: one misconfigured
deploy must not move a source for good. 302/307 never move it (fetch does not report them).

After a failure the wait doubles with every consecutive error (interval × 2^(n-1)), is never
shorter than a Retry-After the server sent, and stops growing at ``CEILING``: a source that
keeps failing is still tried, once per ceiling.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

REDIRECT_CONFIRMATIONS = 3  # consecutive fetches that must see the same permanent redirect
FLOOR = timedelta(minutes=1)
CEILING = timedelta(hours=24)
JITTER = 0.1
UNHEALTHY_AFTER = 5  # consecutive errors before a source is shown as unhealthy


def next_fetch_after_success(now: datetime, interval: timedelta, *,
                             ttl_minutes: int | None = None,
                             headers: Mapping[str, str] | None = None,
                             floor: timedelta = FLOOR,
                             rng: random.Random | None = None) -> datetime:
    wait = interval
    if ttl_minutes:
        wait = max(wait, timedelta(minutes=ttl_minutes))
    if headers:
        wait = max(wait, cache_lifetime(headers, now) or timedelta(0))
        wait = max(wait, retry_after(headers, now) or timedelta(0))
    return now + _jitter(_clamp(wait, floor), rng)


def next_fetch_after_failure(now: datetime, interval: timedelta, error_count: int, *,
                             retry_after_seconds: float | None = None,
                             floor: timedelta = FLOOR,
                             rng: random.Random | None = None) -> datetime:
    """``error_count`` counts this failure too (1 after the first)."""
    exponent = min(max(error_count - 1, 0), 20)  # 2**20 intervals is past any ceiling
    wait = interval * (2 ** exponent)
    if retry_after_seconds:
        wait = max(wait, timedelta(seconds=retry_after_seconds))
    return now + _jitter(_clamp(wait, floor), rng)


def cache_lifetime(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    """Freshness lifetime from Cache-Control max-age, else Expires (RFC 9111 §4.2.1)."""
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age":
            try:
                return timedelta(seconds=max(int(value.strip('" ')), 0))
            except ValueError:
                return None
    expires = parse_http_date(headers.get("expires"))
    return expires - now if expires else None


def retry_after(headers: Mapping[str, str], now: datetime) -> timedelta | None:
    seconds = parse_retry_after(headers.get("retry-after"), now)
    return None if seconds is None else timedelta(seconds=seconds)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a Retry-After value, or None when absent or unreadable.

    The value is delta-seconds or an HTTP-date (RFC 9110 §10.2.3); a date in the past means
    "now" (0). ``now`` is best the response's own Date, so clock skew does not matter.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    when = parse_http_date(value)
    return None if when is None else max(0.0, (when - now).total_seconds())


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP-date in any of its three forms (RFC 9110 §5.6.7), as aware UTC; None if invalid."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # No zone (asctime) or "-0000": HTTP-dates are always UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _clamp(wait: timedelta, floor: timedelta) -> timedelta:
    return min(max(wait, floor), CEILING)


def _jitter(wait: timedelta, rng: random.Random | None) -> timedelta:
    draw = (rng or random).random()
    return wait + wait * (JITTER * draw)


def follow_redirect(target: str | None, count: int,
                    seen: str | None) -> tuple[str | None, int, bool]:
    """The redirect bookkeeping after a fetch that saw ``seen`` (None: no permanent
    redirect): (target, count, confirmed) — confirmed when the move should take effect now."""
    if seen is None:
        return None, 0, False
    count = count + 1 if seen == target else 1
    return seen, count, count == REDIRECT_CONFIRMATIONS
