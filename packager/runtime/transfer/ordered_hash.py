"""Hash a file in offset order while its ranges arrive out of order.

Why this design: digests are sequential, ranges are not. Keeping every out-of-order buffer in
memory until its turn would make memory grow with the file; hashing after the download would
read the whole file a second time and add its full hashing time to the wall clock. Instead:

* a writer whose buffer lands exactly at the hash frontier hashes it straight from memory (the
  common case: ranges are handed out in order, so the oldest range is usually at the frontier);
* a writer ahead of the frontier hands its buffer to the hasher, which keeps it until the frontier
  gets there, while a pool's budget allows (buffers.py); the writer goes on with a spare;
* beyond that budget the bytes are only recorded as written; when the frontier later reaches
  them, the thread that moved it reads them back (a page-cache copy moments after the write, or
  an aligned O_DIRECT read when the file is written with direct I/O), while other ranges are
  still downloading.

Only one thread hashes a given file at a time (`_busy`); the others never wait, they just
record what they wrote. hashlib releases the GIL on large updates, so different files hash on
different cores.

A thread may have to stop catching up halfway (`should_yield`: a niced prefetch worker that was
just replaced by a normal-priority one must not keep a whole file's hashing at nice 19); it then
calls `on_yield`, which queues `kick()` for a worker that carries on from the frontier.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import overload

from .buffers import BufferPool, aligned_buffer
from .digests import Hasher
from .direct_io import align_down, align_up, unsupported

_REREAD_CHUNK = 2 * 1024 * 1024
# One re-read buffer per thread, reused: a fresh `bytes` per pread is a fresh mmap'd allocation
# whose pages fault in on every call (measured: 2.3 GiB/s against 7.6 GiB/s into a reused one).
# Page-aligned (an mmap), as O_DIRECT reads need.
_local = threading.local()


def _reread_buffer() -> memoryview:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = aligned_buffer(_REREAD_CHUNK)
    return buf


class OrderedHasher:
    def __init__(self, hasher: Hasher | None, fd: int, size: int,
                 should_yield: Callable[[], bool] | None = None,
                 on_yield: Callable[[], None] | None = None, pool: BufferPool | None = None,
                 direct_fd: int = -1, wait_for_room: float = 0.0):
        self._should_yield = should_yield
        # With direct I/O a read-back is a disk read on the hash's critical path: a writer ahead
        # of the frontier rather waits this long for room to keep its buffer (the hash is the
        # bottleneck then anyway) before it gives up and leaves its bytes to be read back.
        self._wait_for_room = wait_for_room
        self._pool = pool
        self._direct_fd = direct_fd  # read back with O_DIRECT: the bytes were written that way
        self.on_yield = on_yield
        self._hasher = hasher
        self._fd = fd
        self._size = size
        self._frontier = 0
        self._written: dict[int, int] = {}  # range start -> end of data written from it
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._held: dict[int, tuple[memoryview, memoryview]] = {}  # offset -> kept buffer, its bytes
        self.reread_bytes = 0  # bytes hashed from the file instead of from memory

    @property
    def active(self) -> bool:
        return self._hasher is not None

    def seed(self, start: int, end: int) -> None:
        """Mark [start, end) as already on disk (a range completed by an earlier run)."""
        with self._lock:
            self._written[start] = max(end, self._written.get(start, start))

    @overload
    def wrote(self, range_start: int, offset: int, data: memoryview, buf: memoryview) -> memoryview: ...

    @overload
    def wrote(self, range_start: int, offset: int, data: memoryview, buf: None = None) -> None: ...

    def wrote(self, range_start: int, offset: int, data: memoryview,
              buf: memoryview | None = None) -> memoryview | None:
        """Record that `data` (held in `buf`, if given) was written at `offset`, inside the range
        beginning at range_start. Returns the buffer the caller goes on with: `buf`, or a spare
        when the hasher keeps `buf` to hash from when the frontier reaches it."""
        end = offset + len(data)
        until = 0.0
        while True:
            with self._lock:
                at_frontier = not self._busy and self._frontier == offset
                if self._hasher is None or at_frontier or buf is None or self._pool is None:
                    self._written[range_start] = end
                    if self._hasher is None or not at_frontier:
                        return buf
                    self._busy = True
                    break
                spare = self._pool.spare()
                if spare is not None:
                    self._written[range_start] = end
                    self._held[offset] = (buf, data)
                    return spare
                now = time.monotonic()
                until = until or now + self._wait_for_room
                if now >= until:
                    self._written[range_start] = end  # to be read back
                    return buf
            # Unrecorded while waiting, so the frontier stops here and this thread can hash its
            # bytes from memory when it arrives.
            self._pool.wait_for_room(until, lambda: not self._busy and self._frontier == offset)
        try:
            self._hasher.update(data)
        except BaseException:
            self._release()
            raise
        self._catch_up(end)
        return buf

    def discard(self) -> None:
        """Give every kept buffer back (the file is done, failed or restarted)."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for buf, _ in held:
            self._give_back(buf)

    def _give_back(self, buf: memoryview) -> None:
        assert self._pool is not None  # buffers are only kept (_held) when there is a pool
        self._pool.release(buf)

    def kick(self) -> None:
        """Hash what is written at the frontier, unless another thread already does."""
        with self._lock:
            if self._hasher is None or self._busy or self._contiguous_end(self._frontier) <= self._frontier:
                return
            self._busy = True
            frontier = self._frontier
        self._catch_up(frontier)

    def finish(self) -> str | None:
        """Hash whatever is left (every range is written by now) and return the hex digest."""
        if self._hasher is None:
            return None
        with self._lock:
            while self._busy:
                self._idle.wait()
            self._busy = True
            frontier = self._frontier
        self._catch_up(frontier, may_yield=False)
        if self._frontier != self._size:
            raise RuntimeError(f"hash frontier stopped at {self._frontier} of {self._size}")
        return self._hasher.hexdigest()

    def _release(self) -> None:
        with self._lock:
            self._busy = False
            self._idle.notify_all()
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        if self._pool is not None and self._wait_for_room:
            self._pool.wake()

    def _contiguous_end(self, frontier: int) -> int:
        end = frontier
        moved = True
        while moved:
            moved = False
            for start, written in self._written.items():
                if start <= end < written:
                    end, moved = written, True
        return end

    def _catch_up(self, frontier: int, may_yield: bool = True) -> None:
        """Advance the frontier over data already written; caller holds the busy flag."""
        try:
            while True:
                with self._lock:
                    self._frontier = frontier
                    end = self._contiguous_end(frontier)
                    if end <= frontier:
                        self._busy = False
                        self._idle.notify_all()
                        # Forget ranges wholly behind the frontier so lookups stay short.
                        for start in [s for s, w in self._written.items() if w <= frontier]:
                            if self._written[start] <= frontier:
                                del self._written[start]
                        self._wake_waiters()  # a writer waiting at this frontier hashes now
                        return
                assert self._hasher is not None  # callers only get here with a hasher
                while frontier < end:
                    if may_yield and self.on_yield and self._should_yield and self._should_yield():
                        with self._lock:
                            self._frontier = frontier
                            self._busy = False
                            self._idle.notify_all()
                        self._wake_waiters()
                        self.on_yield()
                        return
                    with self._lock:
                        kept = self._held.pop(frontier, None)
                        # A kept buffer starts where a write started: read back only up to it.
                        stop = min([o for o in self._held if frontier < o < end], default=end)
                    if kept is not None:
                        buf, data = kept
                        self._hasher.update(data)
                        self._give_back(buf)
                        frontier += len(data)
                    else:
                        frontier += self._reread(frontier, stop)
        except BaseException:
            self._release()
            raise

    def _reread(self, frontier: int, stop: int) -> int:
        """Hash bytes frontier.. (at most up to stop) back from the file; returns how many."""
        assert self._hasher is not None
        buf = _reread_buffer()
        if self._direct_fd < 0:
            n = os.preadv(self._fd, [buf[: min(len(buf), stop - frontier)]], frontier)
            if not n:
                raise OSError(f"short read at {frontier} while hashing")
            self._hasher.update(buf[:n])
        else:  # whole blocks around the wanted bytes; the block holding EOF comes back short
            base = align_down(frontier)
            try:
                got = os.preadv(self._direct_fd, [buf[: min(len(buf), align_up(stop) - base)]], base)
            except OSError as exc:
                if not unsupported(exc):
                    raise
                self._direct_fd = -1  # read back through the page cache instead
                return self._reread(frontier, stop)
            n = min(base + got, stop) - frontier
            if n <= 0:
                raise OSError(f"short read at {frontier} while hashing")
            self._hasher.update(buf[frontier - base: frontier - base + n])
        self.reread_bytes += n
        return n
