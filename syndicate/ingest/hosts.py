"""Politeness per host: how many fetches may run at once against one host, which hosts asked
us to wait, and an order of dispatch that spreads one host's sources out.

A feed farm (one host serving hundreds of feeds) must see at most ``per_host`` connections
from us at a time, not ``fetch_workers``; and after a 429 or 503 with Retry-After, none at
all until the time it named.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime


class HostGate:
    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Semaphore] = {}
        self._wait_until: dict[str, datetime] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of the host's slots for the duration (local files: no limit)."""
        if not host:
            yield
            return
        with self._lock:
            semaphore = self._slots.setdefault(host, threading.Semaphore(self.per_host))
        with semaphore:
            yield

    def wait(self, host: str, until: datetime) -> None:
        with self._lock:
            if host and (host not in self._wait_until or self._wait_until[host] < until):
                self._wait_until[host] = until

    def waiting_until(self, host: str, now: datetime) -> datetime | None:
        """When the host said we may come back, if that is still in the future."""
        with self._lock:
            until = self._wait_until.get(host)
        return until if until is not None and until > now else None


def interleave_by_host(items: Iterable[str], host_of: Callable[[str], str]) -> list[str]:
    """Round-robin over hosts, so one host's sources are spread through the batch instead
    of arriving back to back: a, a, a, b, c → a, b, c, a, a."""
    queues: dict[str, deque[str]] = defaultdict(deque)
    for item in items:
        queues[host_of(item)].append(item)
    order: list[str] = []
    while queues:
        for host in list(queues):
            order.append(queues[host].popleft())
            if not queues[host]:
                del queues[host]
    return order
