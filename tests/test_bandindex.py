"""The in-memory band index's week: sorted arrays plus recent additions, against a model."""

from __future__ import annotations

import random

import pytest

from syndicate.store import bandindex


@pytest.mark.parametrize("merge_every", [1, 7, 10_000])
def test_a_week_finds_every_entry_under_every_key_whether_merged_or_not(
        monkeypatch: pytest.MonkeyPatch, merge_every: int) -> None:
    monkeypatch.setattr(bandindex, "MERGE_MIN_KEYS", merge_every)
    rnd = random.Random(7)
    week = bandindex._Week()
    model: dict[int, list[int]] = {}
    shared = [rnd.getrandbits(63) for _ in range(20)]  # keys several entries share
    for entry_id in range(1, 400):
        keys = [*{rnd.getrandbits(63) for _ in range(5)}, rnd.choice(shared)]
        week.add(entry_id, keys)
        for key in keys:
            model.setdefault(key, []).append(entry_id)
    probe = [*shared, *rnd.sample(sorted(model), 50), *(rnd.getrandbits(63) for _ in range(50))]
    found = sorted(week.lookup(probe))
    assert found == sorted((key, entry_id) for key in probe for entry_id in model.get(key, []))
    week.merge()
    assert sorted(week.lookup(probe)) == found and not week.recent


def test_what_waits_unmerged_is_bounded_however_large_the_week(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bandindex, "MERGE_MIN_KEYS", 10)
    monkeypatch.setattr(bandindex, "MERGE_MAX_KEYS", 60)
    rnd = random.Random(11)
    week = bandindex._Week()
    model: dict[int, list[int]] = {}
    for entry_id in range(1, 2_000):
        keys = [rnd.getrandbits(63) for _ in range(6)]
        week.add(entry_id, keys)
        for key in keys:
            model.setdefault(key, []).append(entry_id)
        assert len(week.recent_keys) < 60  # the week itself is 200 times larger
    probe = rnd.sample(sorted(model), 200)
    assert sorted(week.lookup(probe)) == sorted(
        (key, entry_id) for key in probe for entry_id in model[key])


def test_the_largest_keys_survive_the_arrays() -> None:
    """Keys use all 63 bits (kind, band, hashes): they must compare as unsigned integers."""
    week = bandindex._Week()
    keys = [(1 << 63) - 1, 1 << 62, 1, 0]
    for entry_id, key in enumerate(keys, 1):
        week.add(entry_id, [key])
    week.merge()
    assert sorted(week.lookup(keys)) == sorted(zip(keys, range(1, 5), strict=True))


def test_kept_candidates_are_bounded_and_the_least_recently_used_go_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bandindex, "CANDIDATES_KEPT", 2)
    index = bandindex.BandIndex()
    index.keep(1, "one")
    index.keep(2, "two")
    assert index.cached([1]) == ({1: "one"}, [])  # 1 is now the most recently used
    index.keep(3, "three")
    assert index.cached([1, 2, 3]) == ({1: "one", 3: "three"}, [2])


def test_an_edit_or_a_drop_forgets_what_was_kept(store_url: str) -> None:
    from syndicate.store import Store

    store = Store(store_url)
    try:
        index = bandindex.BandIndex()
        index.keep(5, "before the edit")
        index.keep(6, "another entry")
        with store.write_engine.begin() as conn:
            index.stamp_edit(conn, 5)
        assert index.cached([5, 6]) == ({6: "another entry"}, [5])
        index.forget()
        assert index.cached([6]) == ({}, [6])
    finally:
        store.close()


def test_the_web_processes_import_the_store_without_numpy() -> None:
    """numpy is the writer's: a web process (and a warm re-poll) must not pay for loading it."""
    import subprocess
    import sys

    check = ("import sys, syndicate.web.app, syndicate.store.database; "
             "print('numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_keys_that_share_a_fingerprint_find_each_others_entries() -> None:
    """The arrays hold 32-bit fingerprints: a key with the same one finds the entry as well,
    an extra candidate that verification on the stored signatures turns away."""
    import numpy as np

    keys = np.random.default_rng(3).integers(0, 2**63, size=300_000, dtype=np.uint64)
    fingerprints = bandindex._fingerprints(keys)
    order = np.argsort(fingerprints, kind="stable")
    same = np.flatnonzero(fingerprints[order][1:] == fingerprints[order][:-1])[0]
    first, second = int(keys[order][same]), int(keys[order][same + 1])
    assert first != second
    week = bandindex._Week()
    week.add(1, [first])
    week.merge()
    assert list(week.lookup([second])) == [(second, 1)]
