"""The near-duplicate index in memory: LSH band key → the entries indexed under it, by week.

It was a table (``entry_bands``: week, band key, entry id), and that table was the largest
cost of a cold ingest: about 30 rows written and probed per entry, each a B-tree insert or
look-up at a random place (SQLite alone takes 4 µs a row to insert them; through the store,
band rows and probes were 18 of the writer's 43 seconds on the bench corpus). What it held
is a pure function of each entry's date and stored signatures (``ingest.similarity``), so the
store now derives it in the writing process instead of writing it:

- a week is loaded when a probe first touches it, from the signatures of the entries dated
  in it (``entries.published`` is indexed), and held as a sorted array of keys with the
  entry id beside each; later entries wait in a small dictionary until they are merged in;
- entries this process inserts or edits are added as they are written;
- entries other processes inserted are read at the start of each transaction that probes:
  those with a larger id than the largest this index has seen (ids grow with every insert,
  which happens under the write lock);
- an edit changes an entry's keys in place, which another process cannot see by its id:
  every edit stamps ``meta.bands_epoch`` anew, and a process that finds a stamp it did not
  write drops what it loaded (edits are rare: a feed that rewrites an entry);
- whatever a rolled-back write may have added, the index is dropped and loaded again.

Stale keys (an edited entry's old ones) are harmless: a candidate is always verified on the
signatures read from the store. A missing key would lose a duplicate, which is why every
path above errs towards dropping and reloading. At most ``MAX_WEEKS`` weeks are kept,
the least recently probed dropped first, so a long-running process does not grow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import BUCKET_SECONDS, band_bucket, entries, meta

EPOCH_KEY = "bands_epoch"
MAX_WEEKS = 12
# Entries added since the last merge wait in a dictionary; merging costs a sort of the week,
# so it waits until the dictionary holds a fair share of the week's keys.
MERGE_MIN_KEYS = 50_000
_LOAD_PAGE = 5000  # entries read at a time when a week is loaded (1 KB of signatures each)

_EMPTY_KEYS = np.empty(0, dtype=np.uint64)
_EMPTY_IDS = np.empty(0, dtype=np.int64)


class _Week:
    """One week's band keys: sorted arrays, and a dictionary of those not merged yet."""

    __slots__ = ("ids", "keys", "recent", "recent_count")

    def __init__(self) -> None:
        self.keys = _EMPTY_KEYS
        self.ids = _EMPTY_IDS
        self.recent: dict[int, list[int]] = {}
        self.recent_count = 0

    def add(self, entry_id: int, keys: Iterable[int]) -> None:
        for key in keys:
            self.recent.setdefault(key, []).append(entry_id)
            self.recent_count += 1
        if self.recent_count >= max(MERGE_MIN_KEYS, len(self.keys) // 4):
            self.merge()

    def merge(self) -> None:
        if not self.recent:
            return
        pairs = [(key, entry_id) for key, ids in self.recent.items() for entry_id in ids]
        keys = np.concatenate([self.keys, np.fromiter((k for k, _ in pairs), np.uint64,
                                                      len(pairs))])
        ids = np.concatenate([self.ids, np.fromiter((i for _, i in pairs), np.int64,
                                                    len(pairs))])
        order = np.argsort(keys, kind="stable")
        self.keys, self.ids = keys[order], ids[order]
        self.recent, self.recent_count = {}, 0

    def lookup(self, keys: list[int]) -> Iterator[tuple[int, int]]:
        """(key, entry id) for every entry indexed under one of ``keys``."""
        if len(self.keys):
            wanted = np.fromiter(keys, np.uint64, len(keys))
            first = np.searchsorted(self.keys, wanted, side="left")
            last = np.searchsorted(self.keys, wanted, side="right")
            for i in np.flatnonzero(last > first).tolist():
                key = keys[i]
                for entry_id in self.ids[first[i]:last[i]].tolist():
                    yield key, entry_id
        if self.recent:
            for key in keys:
                for entry_id in self.recent.get(key, ()):
                    yield key, entry_id


class BandIndex:
    """The index of one process; used by its one writing connection, one transaction at a
    time (the store's write turns), so it needs no lock of its own."""

    def __init__(self) -> None:
        self._weeks: dict[int, _Week] = {}  # in the order last probed
        self._seen_id: int | None = None  # entries up to this id are in the loaded weeks
        self._epoch: str | None = None

    def forget(self) -> None:
        """Drop everything: the next probe loads from the store again."""
        self._weeks.clear()
        self._seen_id = None

    def catch_up(self, conn: Connection) -> None:
        """Bring the loaded weeks up to what the store holds now (at a transaction's start,
        under the write lock): other processes' inserts and edits since we last looked."""
        epoch = conn.execute(sa.select(meta.c.value).where(meta.c.key == EPOCH_KEY)).scalar()
        if epoch != self._epoch:
            self.forget()
            self._epoch = epoch
        largest = conn.execute(sa.select(sa.func.max(entries.c.id))).scalar() or 0
        if self._seen_id is not None and largest > self._seen_id and self._weeks:
            self._load(conn, entries.c.id > self._seen_id, only=set(self._weeks))
        self._seen_id = largest

    def neighbours(self, conn: Connection,
                   keys_by_week: dict[int, set[int]]) -> list[tuple[int, int]]:
        """(key, entry id) for each entry indexed under one of a week's keys."""
        found: list[tuple[int, int]] = []
        for bucket, keys in keys_by_week.items():
            found += self._week(conn, bucket).lookup(list(keys))
        return found

    def add(self, entry_id: int, published: datetime, keys: Iterable[int]) -> None:
        """An entry this transaction wrote (inserted, or edited into new keys)."""
        week = self._weeks.get(band_bucket(published))
        if week is not None:  # else it is read with its week, if that is ever probed
            week.add(entry_id, keys)
        if self._seen_id is not None:
            self._seen_id = max(self._seen_id, entry_id)

    def stamp_edit(self, conn: Connection) -> None:
        """An entry's keys changed in place: tell the other processes (see the docstring)."""
        epoch = uuid.uuid4().hex
        updated = conn.execute(meta.update().where(meta.c.key == EPOCH_KEY).values(value=epoch))
        if updated.rowcount == 0:
            conn.execute(meta.insert().values(key=EPOCH_KEY, value=epoch))
        self._epoch = epoch

    def _week(self, conn: Connection, bucket: int) -> _Week:
        week = self._weeks.pop(bucket, None)
        if week is None:
            self._load(conn, sa.and_(entries.c.published >= _week_start(bucket),
                                     entries.c.published < _week_start(bucket + 1)),
                       only={bucket}, fresh=True)
            week = self._weeks.pop(bucket)
            while len(self._weeks) >= MAX_WEEKS:
                del self._weeks[next(iter(self._weeks))]  # the least recently probed
        self._weeks[bucket] = week  # now the most recently probed
        return week

    def _load(self, conn: Connection, where: Any, only: set[int], fresh: bool = False) -> None:
        """Add the keys of the stored entries that match ``where`` and fall in the weeks
        ``only``; ``fresh``: those weeks are loaded whole, anew."""
        from ..ingest.similarity import entry_band_keys

        if fresh:
            for bucket in only:
                self._weeks[bucket] = _Week()
        query = (sa.select(entries.c.id, entries.c.published, entries.c.lead_signature,
                           entries.c.body_signature).where(where).order_by(entries.c.id))
        last_id = 0
        while True:  # a page at a time: a week of a large store is a lot of signatures
            rows = conn.execute(query.where(entries.c.id > last_id).limit(_LOAD_PAGE)).all()
            for row in rows:
                bucket = band_bucket(row.published)
                if bucket in only:
                    self._weeks[bucket].add(row.id, entry_band_keys(row.lead_signature,
                                                                    row.body_signature))
            if len(rows) < _LOAD_PAGE:
                break
            last_id = rows[-1].id
        for bucket in only:
            self._weeks[bucket].merge()


def _week_start(bucket: int) -> datetime:
    return datetime.fromtimestamp(bucket * BUCKET_SECONDS, UTC)
