"""Parsing and normalizing in worker processes.

Both are CPU-bound Python (lxml and nh3 release the GIL only in parts), so fetch threads
doing them in turn share one core. ``NormalizerPool`` runs ``reading.normalize_feed`` in
``processes`` worker processes instead, while the fetch threads wait on the network and the
writer thread on the store: on a two-core machine that is the difference between one busy
core and two.

Workers are started with ``spawn`` (a fork of a process that already runs threads can copy
a held lock), lazily on the first feed that needs parsing, so a re-poll where every source
answers 304 starts none. They ignore SIGINT (the parent stops them, after the work in
flight) and exit when the parent dies (``orphans``).

If a worker dies (a crash in a C extension, the OOM killer), every feed in flight in that
pool fails with it, the guilty and the innocent alike: the pool is replaced and each is
tried again, up to ``ATTEMPTS`` times. A feed that kills worker after worker fails with that
message; one that was only there when another did gets through on a later attempt.
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
from ..orphans import exit_with_parent
from ..types import NormalizedFeed, SourceConfig


def default_processes() -> int:
    """One worker per core but one: under load the parent's writer thread keeps a core busy
    (on the bench corpus, 2 cores, one worker ingested as fast as two, in 50 MB less).
    None on a single core, where a worker would only compete with the parent."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max((cores or 1) - 1, 0)


ATTEMPTS = 3


class NormalizerPool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __call__(self, content: bytes, url: str, content_type: str | None,
                 source: SourceConfig, known: dict[str, str], now: datetime) -> NormalizedFeed:
        for _ in range(ATTEMPTS):
            executor = self._current()
            try:
                return executor.submit(_normalize, content, url, content_type, source,
                                       known, now).result()
            except BrokenProcessPool:
                self._replace(executor)
        raise ParseError(f"the parser process died while reading this feed, {ATTEMPTS} times "
                         "in a row")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the parse workers are stopped")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker)
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


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the workers, after the work
    # in flight. A parent that dies without doing so takes them with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
