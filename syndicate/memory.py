"""Handing freed memory back to the operating system.

The writing process frees far more than it keeps: every source update arrives as a few
hundred KB of normalized entries that are written and dropped, and the band index replaces
its arrays (megabytes each) as it grows. glibc's malloc keeps what was freed in its heap for
later, and long-lived objects allocated in between pin it there: in a cold ingest of 10,000
feeds the main process held 90-135 MB of freed memory in its heap, a quarter of its resident
size. ``malloc_trim`` returns the free pages of every arena (in tens of ms for hundreds of
MB, then well under a millisecond while little has been freed since), so the writer calls it
now and then (``Trimmer``). Elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections.abc import Callable

TRIM_SECONDS = 10.0  # at most this often: each call walks the whole heap


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:  # the symbols already loaded into this process (libc among them)
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc (musl, macOS): its allocator, its own policy
    return trim


def release_free_memory() -> bool:
    """Return the free pages of malloc's heap to the OS; False where that is not possible."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class Trimmer:
    """Calls ``release_free_memory`` at most every ``TRIM_SECONDS``, when told work was done."""

    def __init__(self, seconds: float = TRIM_SECONDS) -> None:
        self.seconds = seconds
        self._last = time.monotonic()

    def after_work(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            self._last = now
            release_free_memory()
