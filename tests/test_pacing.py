"""When sources are fetched next: table-driven over the facts that decide it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from syndicate.ingest import pacing

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


class NoJitter(random.Random):
    def random(self) -> float:
        return 0.0


@pytest.mark.parametrize(("interval", "ttl", "headers", "expected"), [
    (timedelta(minutes=15), None, {}, timedelta(minutes=15)),
    (timedelta(minutes=15), 60, {}, timedelta(minutes=60)),  # RSS <ttl> asks for longer
    (timedelta(minutes=15), 5, {}, timedelta(minutes=15)),  # a shorter ttl never speeds us up
    (timedelta(minutes=15), None, {"cache-control": "public, max-age=3600"}, timedelta(hours=1)),
    (timedelta(minutes=15), None, {"cache-control": "max-age=60"}, timedelta(minutes=15)),
    (timedelta(minutes=15), None, {"expires": "Wed, 25 Nov 2026 14:00:00 GMT"}, timedelta(hours=2)),
    (timedelta(minutes=15), None, {"retry-after": "7200"}, timedelta(hours=2)),
    (timedelta(minutes=15), None, {"cache-control": "max-age=9999999"}, pacing.CEILING),
    (timedelta(seconds=5), None, {}, MIN),  # the floor
])
def test_next_fetch_after_success(interval: timedelta, ttl: int | None,
                                  headers: dict[str, str], expected: timedelta) -> None:
    when = pacing.next_fetch_after_success(NOW, interval, ttl_minutes=ttl, headers=headers,
                                           rng=NoJitter())
    assert when - NOW == expected


def test_jitter_spreads_up_to_ten_percent() -> None:
    rng = random.Random(1)
    waits = {pacing.next_fetch_after_success(NOW, timedelta(minutes=10), rng=rng) - NOW
             for _ in range(50)}
    assert len(waits) > 40
    assert all(timedelta(minutes=10) <= w <= timedelta(minutes=11) for w in waits)


@pytest.mark.parametrize(("errors", "retry_after", "expected"), [
    (1, None, timedelta(minutes=15)),
    (2, None, timedelta(minutes=30)),
    (4, None, timedelta(minutes=120)),
    (30, None, pacing.CEILING),  # capped, but still tried
    (1, 3600.0, timedelta(hours=1)),  # the server's Retry-After wins when longer
])
def test_backoff_after_failure(errors: int, retry_after: float | None,
                               expected: timedelta) -> None:
    when = pacing.next_fetch_after_failure(NOW, timedelta(minutes=15), errors,
                                           retry_after_seconds=retry_after, rng=NoJitter())
    assert when - NOW == expected


def test_unparsable_cache_headers_are_ignored() -> None:
    headers = {"cache-control": "max-age=soon", "expires": "whenever", "retry-after": "later"}
    when = pacing.next_fetch_after_success(NOW, timedelta(minutes=15), headers=headers,
                                           rng=NoJitter())
    assert when - NOW == timedelta(minutes=15)
