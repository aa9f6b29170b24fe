"""Page-aligned transfer buffers, and the budget for buffers kept for a file's hash frontier.

Buffers are anonymous mmaps: page-aligned, which O_DIRECT writes and reads need (direct_io.py),
and each one is allocated once and reused, so its pages fault in only the first time.

A stream whose buffer lands ahead of its file's hash frontier would otherwise have its bytes read
back from the file when the frontier gets there (ordered_hash.py): a second copy out of the page
cache, or a disk read with direct I/O. Instead the hasher keeps that buffer and the stream goes on
with a spare from this pool. `held_limit` caps how many are kept at once, so memory stays bounded
whatever the file sizes: beyond it, bytes are read back as before.
"""

from __future__ import annotations

import mmap
import threading
import time
from collections.abc import Callable

from .governor import WaitClock


def aligned_buffer(size: int) -> memoryview:
    return memoryview(mmap.mmap(-1, size))


class BufferPool:
    def __init__(self, size: int, held_limit: int, clock: WaitClock | None = None):
        self.size = size
        self._clock = clock
        self.held_limit = held_limit
        self._free: list[memoryview] = []
        self._held = 0
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self.peak_held = 0  # most buffers kept at once (tests, tuning the window)

    def take(self) -> memoryview:
        """A stream's working buffer: always granted (one per stream bounds these)."""
        with self._lock:
            if self._free:
                return self._free.pop()
        return aligned_buffer(self.size)

    def spare(self) -> memoryview | None:
        """A replacement for a buffer the caller is about to hold; None when the budget is spent.
        The caller then holds one buffer more until it calls `release` for it."""
        with self._lock:
            if self._held >= self.held_limit:
                return None
            self._held += 1
            self.peak_held = max(self.peak_held, self._held)
            if self._free:
                return self._free.pop()
        return aligned_buffer(self.size)

    def release(self, buf: memoryview) -> None:
        """A held buffer is done with (hashed, or its file restarted)."""
        with self._room:
            self._held -= 1
            self._free.append(buf)
            self._room.notify_all()

    def wait_for_room(self, until: float, done: Callable[[], bool]) -> None:
        """Sleep until a held buffer is released, `wake` is called or the monotonic deadline
        passes; returns at once when `done()` (the caller's own reason to stop waiting)."""
        start = time.monotonic()
        with self._room:
            while self._held >= self.held_limit and not done():
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._room.wait(left)
        if self._clock is not None:
            self._clock.add(int((time.monotonic() - start) * 1e9))

    def wake(self) -> None:
        """Something a waiter may be waiting for changed (a hash frontier went idle)."""
        with self._room:
            self._room.notify_all()
