"""The near-duplicate index in memory: LSH band key → the entries indexed under it, by week.

The store keeps each entry's band keys in one row (``entry_keys``: week, entry id, the keys
packed), and this process looks them up in memory: a week is read whole, as one range of
that table, when a probe first touches it, and held as a sorted array of 32-bit fingerprints
of its keys with the entry id beside each (later entries wait in a small dictionary until
they are merged in). Before,
a row per key (``entry_bands``) made a cold ingest write and probe thirty rows per entry at
random places in one B-tree: 18 of the writer's 43 seconds on the bench corpus.

The loaded weeks follow the store:
- entries this process inserts or edits are added as they are written;
- entries other processes inserted are read at the start of each transaction that probes or
  writes: those with a larger id than the largest this index has seen (ids grow with every
  insert, which happens under the write lock);
- an edit changes an entry's keys in place, which another process cannot see by its id:
  every edit stamps ``meta.bands_epoch`` anew, and a process that finds a stamp it did not
  write drops what it loaded (edits are rare: a feed that rewrites an entry);
- whatever a rolled-back write may have added, the index is dropped and read again (the
  ids that write took are given again, and must not count as seen).

The entries found are verified on their signatures, read from the store; the index keeps
the last ``CANDIDATES_KEPT`` it was given (``cached``, ``keep``), since the same entries
come up again and again (on the bench corpus, 125,000 look-ups found 18,800 entries: five
thousand kept answer three of five, ten thousand four of five, for twice the memory). An edit
or a drop of the index forgets them too.

Stale keys (an edited entry's old ones, kept in memory) are harmless: a candidate is always
verified on the signatures read from the store. A missing key would lose a duplicate, which
is why every path above errs towards reading again. At most ``MAX_WEEKS`` weeks are kept,
the least recently probed dropped first, so a long-running process does not grow.
"""

from __future__ import annotations

import functools
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import band_bucket, entries, entry_keys, meta

EPOCH_KEY = "bands_epoch"
MAX_WEEKS = 8
# Entries added since the last merge wait in a dictionary and lists: about 100 bytes a key
# where the arrays take 8. A merge copies the week's arrays once (the new keys are sorted
# and slotted in), so it waits until the recent keys are a fair share of the week, but at
# most MERGE_MAX_KEYS of them: a week of a 10,000-feed ingest holds millions of keys, and a
# quarter of that waiting in Python objects was tens of MB a week.
MERGE_MIN_KEYS = 8_000
MERGE_MAX_KEYS = 64_000
CANDIDATES_KEPT = 5_000  # about 7 MB: two 512-byte signatures and their record each


@functools.cache
def _numpy() -> Any:
    """numpy, on first use: the web processes import the store but never write, and need not
    load it."""
    import numpy

    return numpy


# In the sorted arrays a band key is held as a 32-bit fingerprint (and an entry id in 32 bits):
# 8 bytes a key instead of 16, which halves the index (a week of a 10,000-feed store is
# millions of keys). Two keys that share a fingerprint only make an extra candidate, which
# verification on the stored signatures turns away: about one entry in seventy gets one in
# a week of two million keys.
_FINGERPRINT_MULTIPLIER = 0x9E3779B97F4A7C15


def _fingerprints(keys: Any) -> Any:
    """The 32-bit fingerprints of an array of 63-bit band keys (multiplicative hashing)."""
    np = _numpy()
    mixed = keys.astype(np.uint64) * np.uint64(_FINGERPRINT_MULTIPLIER)  # wraps, on purpose
    return (mixed >> np.uint64(32)).astype(np.uint32)


class _Week:
    """One week's band keys: sorted arrays of fingerprints and entry ids, and the keys added
    since the last merge."""

    __slots__ = ("ids", "keys", "recent", "recent_ids", "recent_keys", "recent_more")

    def __init__(self) -> None:
        np = _numpy()
        self.keys = np.empty(0, dtype=np.uint32)  # fingerprints, sorted
        self.ids = np.empty(0, dtype=np.uint32)
        # Added since the last merge: in order (to merge), and by key (to look up). A key
        # maps to the first entry added under it; the rare others (the near-duplicates the
        # index is for) are listed in recent_more. Whole entries go in with C-speed dict
        # operations: a key at a time cost a tenth of the writer's time.
        self.recent_keys: list[int] = []
        self.recent_ids: list[int] = []
        self.recent: dict[int, int] = {}
        self.recent_more: dict[int, list[int]] = {}

    def add(self, entry_id: int, keys: Sequence[int]) -> None:
        repeated = self.recent.keys() & keys
        for key in repeated:
            self.recent_more.setdefault(key, []).append(entry_id)
        self.recent.update(dict.fromkeys(
            [key for key in keys if key not in repeated] if repeated else keys, entry_id))
        self.recent_keys += keys
        self.recent_ids += [entry_id] * len(keys)
        if len(self.recent_keys) >= min(max(MERGE_MIN_KEYS, len(self.keys) // 4),
                                        MERGE_MAX_KEYS):
            self.merge()

    def merge(self) -> None:
        if not self.recent_keys:
            return
        np = _numpy()
        keys = np.array(self.recent_keys, dtype=np.uint64)
        ids = np.array(self.recent_ids, dtype=np.int64)
        self.recent_keys, self.recent_ids, self.recent, self.recent_more = [], [], {}, {}
        self.add_arrays(keys, ids)

    def add_arrays(self, keys: Any, ids: Any) -> None:
        """Keys with the entry id beside each, merged into the sorted arrays at once: only
        the new keys are sorted, then slotted in after their equals (one copy of the week,
        where sorting it all again made frequent merges cost n log n each)."""
        np = _numpy()
        added = _fingerprints(keys)
        order = np.argsort(added, kind="stable")
        added, added_ids = added[order], ids.astype(np.uint32)[order]
        at = np.searchsorted(self.keys, added, side="right")
        self.keys = np.insert(self.keys, at, added)
        self.ids = np.insert(self.ids, at, added_ids)

    def lookup(self, keys: list[int]) -> Iterator[tuple[int, int]]:
        """(key, entry id) for every entry indexed under one of ``keys`` (and, rarely, under
        a key that shares its fingerprint: see ``_fingerprints``)."""
        if len(self.keys):
            np = _numpy()
            wanted = _fingerprints(np.fromiter(keys, np.uint64, len(keys)))
            first = np.searchsorted(self.keys, wanted, side="left")
            last = np.searchsorted(self.keys, wanted, side="right")
            for i in np.flatnonzero(last > first).tolist():
                key = keys[i]
                for entry_id in self.ids[first[i]:last[i]].tolist():
                    yield key, entry_id
        if self.recent:
            for key in keys:
                added = self.recent.get(key)
                if added is not None:
                    yield key, added
                    for entry_id in self.recent_more.get(key, ()):
                        yield key, entry_id


class BandIndex:
    """The index of one process; used by its one writing connection, one transaction at a
    time (the store's write turns), so it needs no lock of its own."""

    def __init__(self) -> None:
        self._weeks: dict[int, _Week] = {}  # in the order last probed
        self._seen_id: int | None = None  # entries up to this id are in the loaded weeks
        self._epoch: str | None = None
        self._candidates: OrderedDict[int, Any] = OrderedDict()  # entry id → what was kept

    def forget(self) -> None:
        """Drop everything: the next probe loads from the store again."""
        self._weeks.clear()
        self._seen_id = None
        self._candidates.clear()

    def cached(self, entry_ids: Iterable[int]) -> tuple[dict[int, Any], list[int]]:
        """What was kept for these entries, and the ids of those with nothing kept."""
        found, missing = {}, []
        for entry_id in entry_ids:
            kept = self._candidates.get(entry_id)
            if kept is None:
                missing.append(entry_id)
            else:
                self._candidates.move_to_end(entry_id)
                found[entry_id] = kept
        return found, missing

    def keep(self, entry_id: int, value: Any) -> None:
        """Keep what was read for an entry (its candidate record), the oldest making room."""
        self._candidates[entry_id] = value
        if len(self._candidates) > CANDIDATES_KEPT:
            self._candidates.popitem(last=False)

    def catch_up(self, conn: Connection) -> None:
        """Bring the loaded weeks up to what the store holds now (at a transaction's start,
        under the write lock): other processes' inserts and edits since we last looked."""
        epoch = conn.execute(sa.select(meta.c.value).where(meta.c.key == EPOCH_KEY)).scalar()
        if epoch != self._epoch:
            self.forget()
            self._epoch = epoch
        largest = conn.execute(sa.select(sa.func.max(entries.c.id))).scalar() or 0
        if self._seen_id is not None and largest > self._seen_id and self._weeks:
            for bucket, week in self._weeks.items():
                self._read(conn, week, bucket, after=self._seen_id)
        self._seen_id = largest

    def neighbours(self, conn: Connection,
                   keys_by_week: dict[int, set[int]]) -> list[tuple[int, int]]:
        """(key, entry id) for each entry indexed under one of a week's keys."""
        found: list[tuple[int, int]] = []
        for bucket, keys in keys_by_week.items():
            found += self._week(conn, bucket).lookup(list(keys))
        return found

    def add(self, entry_id: int, published: datetime, keys: Sequence[int]) -> None:
        """An entry this transaction wrote (inserted, or edited into new keys)."""
        week = self._weeks.get(band_bucket(published))
        if week is not None:  # else it is read with its week, if that is ever probed
            week.add(entry_id, keys)
        if self._seen_id is not None:
            self._seen_id = max(self._seen_id, entry_id)

    def stamp_edit(self, conn: Connection, entry_id: int) -> None:
        """An entry changed in place: forget what was kept for it, and tell the other
        processes (see the docstring)."""
        self._candidates.pop(entry_id, None)
        epoch = uuid.uuid4().hex
        updated = conn.execute(meta.update().where(meta.c.key == EPOCH_KEY).values(value=epoch))
        if updated.rowcount == 0:
            conn.execute(meta.insert().values(key=EPOCH_KEY, value=epoch))
        self._epoch = epoch

    def _week(self, conn: Connection, bucket: int) -> _Week:
        week = self._weeks.pop(bucket, None)
        if week is None:
            week = _Week()
            self._read(conn, week, bucket)
            while len(self._weeks) >= MAX_WEEKS:
                del self._weeks[next(iter(self._weeks))]  # the least recently probed
        self._weeks[bucket] = week  # now the most recently probed
        return week

    @staticmethod
    def _read(conn: Connection, week: _Week, bucket: int, after: int = 0) -> None:
        """Add a week's stored keys to ``week``: all of them, or those of entries after an id."""
        rows = conn.execute(sa.select(entry_keys.c.entry_id, entry_keys.c.band_keys).where(
            entry_keys.c.bucket == bucket, entry_keys.c.entry_id > after)).all()
        if rows:
            week.merge()
            week.add_arrays(*unpack_rows(rows))


def unpack_rows(rows: Sequence[Any]) -> tuple[Any, Any]:
    """(keys, entry ids) of stored ``entry_keys`` rows, as two aligned arrays."""
    np = _numpy()
    packed = [bytes(row.band_keys) for row in rows]
    keys = np.frombuffer(b"".join(packed), dtype="<i8").astype(np.uint64)
    counts = [len(p) // 8 for p in packed]
    ids = np.repeat(np.fromiter((row.entry_id for row in rows), np.int64, len(rows)), counts)
    return keys, ids
