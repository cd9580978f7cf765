"""Per-host politeness: dispatch order, concurrency slots, and waiting when asked to."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from syndicate.ingest.hosts import HostGate, interleave_by_host
from syndicate.ingest.pacing import REDIRECT_CONFIRMATIONS, follow_redirect


@pytest.mark.parametrize(("items", "expected"), [
    ([], []),
    (["a1", "a2", "a3", "b1", "c1"], ["a1", "b1", "c1", "a2", "a3"]),
    (["a1", "b1", "a2", "b2"], ["a1", "b1", "a2", "b2"]),
    (["x1", "x2"], ["x1", "x2"]),
])
def test_interleave_by_host(items: list[str], expected: list[str]) -> None:
    assert interleave_by_host(items, lambda item: item[0]) == expected


def test_slots_bound_concurrency_per_host() -> None:
    gate = HostGate(per_host=2)
    running: dict[str, int] = {"a": 0, "b": 0, "": 0}
    peak: dict[str, int] = {"a": 0, "b": 0, "": 0}
    lock = threading.Lock()

    def work(host: str) -> None:
        with gate.slot(host):
            with lock:
                running[host] += 1
                peak[host] = max(peak[host], running[host])
            time.sleep(0.05)
            with lock:
                running[host] -= 1

    threads = [threading.Thread(target=work, args=(h,)) for h in "aaaaaabbbb"]
    threads += [threading.Thread(target=work, args=("",)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak["a"] == 2 and peak["b"] == 2
    assert peak[""] == 5  # local files are not a host


def test_waiting_until() -> None:
    gate = HostGate(per_host=1)
    now = datetime(2026, 11, 25, tzinfo=UTC)
    gate.wait("h", now + timedelta(minutes=5))
    gate.wait("h", now + timedelta(minutes=1))  # a shorter wait never shortens a longer one
    assert gate.waiting_until("h", now) == now + timedelta(minutes=5)
    assert gate.waiting_until("h", now + timedelta(minutes=6)) is None
    assert gate.waiting_until("other", now) is None


@pytest.mark.parametrize(("target", "count", "seen", "expected"), [
    (None, 0, None, (None, 0, False)),
    (None, 0, "https://new/", ("https://new/", 1, False)),
    ("https://new/", 1, "https://new/", ("https://new/", 2, REDIRECT_CONFIRMATIONS == 2)),
    ("https://new/", REDIRECT_CONFIRMATIONS - 1, "https://new/",
     ("https://new/", REDIRECT_CONFIRMATIONS, True)),
    ("https://new/", 2, "https://other/", ("https://other/", 1, False)),  # starts over
    ("https://new/", 2, None, (None, 0, False)),  # a fetch without it: forgotten
])
def test_follow_redirect(target: str | None, count: int, seen: str | None,
                         expected: tuple[str | None, int, bool]) -> None:
    assert follow_redirect(target, count, seen) == expected
