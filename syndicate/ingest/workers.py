"""Parsing and normalizing in worker processes.

Both are CPU-bound Python (lxml and nh3 release the GIL only in parts), so fetch threads
doing them in turn share one core. ``NormalizerPool`` runs ``reading.normalize_feed`` in
``processes`` worker processes instead, while the fetch threads wait on the network and the
writer thread on the store: on a two-core machine that is the difference between one busy
core and two.

Workers are started with ``spawn`` (a fork of a process that already runs threads can copy
a held lock), lazily on the first feed that needs parsing, so a re-poll where every source
answers 304 starts none. They ignore SIGINT and SIGTERM: the parent stops them, after the
work in flight. If a worker dies (a crash in a C extension, the OOM killer), the pool is
replaced and the feed is tried once more; a feed that kills a fresh worker too fails alone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from ..errors import ParseError
from ..types import NormalizedFeed, SourceConfig


def default_processes() -> int:
    """One worker per core but one: under load the parent's writer thread keeps a core busy
    (on the bench corpus, 2 cores, one worker ingested as fast as two, in 50 MB less).
    None on a single core, where a worker would only compete with the parent."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max((cores or 1) - 1, 0)


class NormalizerPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, content: bytes, url: str, content_type: str | None,
                 source: SourceConfig, known: dict[str, str], now: datetime) -> NormalizedFeed:
        for attempt in (1, 2):
            executor = self._current()
            try:
                return executor.submit(_normalize, content, url, content_type, source,
                                       known, now).result()
            except BrokenProcessPool:
                self._replace(executor)
                if attempt == 2:
                    raise ParseError("the parser process died on this feed (twice)") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_ignore_stop_signals)
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:  # another thread may have replaced it already
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)


def _normalize(content: bytes, url: str, content_type: str | None, source: SourceConfig,
               known: dict[str, str], now: datetime) -> NormalizedFeed:
    """What a worker runs; imported there by reference, with only this module's imports
    (the worker needs the parsing libraries, not the store's or the fetcher's)."""
    from .reading import normalize_feed

    return normalize_feed(content, url, content_type, source, known, now)


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
