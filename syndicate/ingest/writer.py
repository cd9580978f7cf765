"""The one thread that writes source updates: those that queue up are written together.

Writes are serialized anyway (SQLite's write lock, PostgreSQL's advisory lock), and most of a
transaction's cost is per commit, not per row: the near-duplicate index takes up to 32 rows
per entry at random places in one B-tree, and a commit writes every page it touched. A commit
per source paid for thousands of pages again and again; a group of sources shares them. So fetch
threads hand their ``PendingWrite`` to the ``Writer`` and go on fetching, and the writer takes
whatever has queued up (at most ``MAX_GROUP_SOURCES`` sources, ``MAX_GROUP_ENTRIES`` entries)
into one transaction, each source in a savepoint of its own (see
``pipeline.write_updates``), after waiting ``GATHER_SECONDS`` at most for more to arrive.
When little arrives the groups are small; under load they grow, which is when it pays.

The queue is bounded, so fetching and parsing cannot run ahead of the store without limit
(memory); a full queue makes ``submit`` wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from ..memory import Trimmer
from ..store import Store
from .pipeline import PendingWrite, UpdateOutcome, write_updates

log = logging.getLogger(__name__)

MAX_GROUP_SOURCES = 32
MAX_GROUP_ENTRIES = 2000
MAX_QUEUED = 64
# How long the writer waits for more updates to join a group before it writes: a commit costs
# far more than this (a thousand sources answering 304 in a burst commit a few dozen times
# instead of a thousand), and nobody waits for a source update by the millisecond.
GATHER_SECONDS = 0.02

_Item = tuple[PendingWrite, "Future[UpdateOutcome]"]


class Writer:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.Queue[_Item | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._trimmer = Trimmer()  # the updates it wrote are freed memory: give it back

    def submit(self, pending: PendingWrite) -> Future[UpdateOutcome]:
        """Queue one source's writes; the future holds its outcome once committed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-writer",
                                                daemon=True)
                self._thread.start()
        future: Future[UpdateOutcome] = Future()
        self._queue.put((pending, future))
        return future

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group, entries = [first], first[0].entry_count
            gather_until = time.monotonic() + GATHER_SECONDS
            while len(group) < MAX_GROUP_SOURCES and entries < MAX_GROUP_ENTRIES:
                try:
                    item = self._queue.get(timeout=max(gather_until - time.monotonic(), 0))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
                entries += item[0].entry_count
            self._write(group)
            del group, first  # what the group held is freed before the heap is trimmed
            self._trimmer.after_work()

    def _write(self, group: list[_Item]) -> None:
        try:
            outcomes = write_updates(self.store, [pending for pending, _ in group])
        except Exception as e:  # the commit failed (disk full, lock timeout, connection lost)
            if len(group) > 1:
                log.warning("writing %d source updates together failed (%s); writing them "
                            "one by one", len(group), e)
                for item in group:
                    self._write([item])
            else:
                group[0][1].set_exception(e)
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            future.set_result(outcome)
