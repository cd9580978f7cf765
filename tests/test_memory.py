"""Freed memory goes back to the OS (glibc's malloc_trim), as the writer asks now and then."""

from __future__ import annotations

import pytest

from syndicate import memory


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_freed_heap_memory_is_returned() -> None:
    # 150 MB of 3 KB strings come from malloc's heap; a small one allocated after them
    # keeps free() from shrinking the heap's top, as the writer's long-lived objects do.
    strings = [bytes(3000) + str(i).encode() for i in range(50_000)]
    pin = bytes(3000) + b"pin"
    before = resident_mb()
    del strings
    freed = resident_mb()
    assert memory.release_free_memory() is True  # glibc here, as on every machine of ours
    after = resident_mb()
    assert freed > before - 50  # free() alone kept most of it
    assert after < freed - 100  # malloc_trim gave it back
    assert pin.endswith(b"pin")


def test_the_writer_trims_at_most_every_so_often(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(1) or True)
    clock = iter([0.0, 1.0, 9.0, 10.5, 11.0, 25.0])
    monkeypatch.setattr(memory.time, "monotonic", lambda: next(clock))
    trimmer = memory.Trimmer(seconds=10)  # created at 0.0
    for _ in range(5):
        trimmer.after_work()  # at 1.0, 9.0, 10.5 (trims), 11.0, 25.0 (trims)
    assert len(calls) == 2
