"""The unit of work: one piece of content (a FileJob) split into byte ranges (RangeTasks).

Entries with the same content (same digest, or same pinned source when unhashed) share a job, so
the bytes are fetched once and placed at every destination.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from ..manifest import Entry
from .cache import BlobLock, cache_key
from .direct_io import align_down
from .journal import Interval, Journal
from .layout import marker_path
from .ordered_hash import OrderedHasher
from .sources import Source, describe


@dataclass(frozen=True)
class Target:
    entry: Entry
    final: str  # absolute path after dest_root mapping
    marker: str = ""  # where its verified marker lives (layout.marker_path); "" = beside final

    @property
    def marker_file(self) -> str:
        return self.marker or marker_path(self.final, None)


@dataclass
class RangeTask:
    job: FileJob
    start: int
    end: int  # exclusive
    pos: int  # next byte to fetch; a retry continues from here, not from start
    attempts: int = 0
    probe: bool = False  # first request of a file whose server may ignore Range


@dataclass(eq=False)
class FileJob:
    index: int
    targets: list[Target]
    key: str
    # download state, set up by the engine's prepare step
    source: Source | None = None
    work_path: str = ""
    fd: int = -1
    direct_fd: int = -1  # a second, O_DIRECT descriptor (direct_io.py); -1 = page cache only
    direct_refused: bool = False  # a direct write was refused: the page cache from then on
    journal: Journal | None = None
    hasher: OrderedHasher | None = None
    lock: BlobLock | None = None
    deferred: list[RangeTask] = field(default_factory=list)  # queued once Range support is known
    pending: int = 0
    inflight: int = 0
    range_support: bool | None = None
    # bookkeeping
    attempts: int = 0  # whole-file attempts (digest/size mismatch restarts)
    retries: int = 0
    bytes_downloaded: int = 0
    resumed_bytes: int = 0
    verification: str = ""
    started: float = 0.0
    finished: bool = False
    error: str | None = None
    mutex: threading.Lock = field(default_factory=threading.Lock)
    # Held around each pwrite. The kernel serialises writes to one file on its inode lock anyway,
    # and a writer waiting there spins while the holder copies: 22% of all CPU on one 2 GiB file
    # with two streams. Waiting here sleeps instead, leaving the core to the hash and the socket.
    write_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def entry(self) -> Entry:
        return self.targets[0].entry

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def description(self) -> str:
        return describe(self.entry)

    def parts(self) -> tuple[Source, Journal, OrderedHasher]:
        """The download state; only valid between the prepare step and the end of the job."""
        assert self.source is not None and self.journal is not None and self.hasher is not None
        return self.source, self.journal, self.hasher

    def start_clock(self) -> None:
        if not self.started:
            self.started = time.monotonic()

    def add_bytes(self, n: int) -> None:
        with self.mutex:
            self.bytes_downloaded += n

    def close_files(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.direct_fd >= 0:
            os.close(self.direct_fd)
            self.direct_fd = -1
        self.direct_refused = False
        if self.hasher is not None:
            self.hasher.discard()
        if self.journal is not None:
            self.journal.close()


def group_jobs(targets: list[Target]) -> list[FileJob]:
    """One job per distinct content; largest first, so small files fill the tail of the run."""
    by_key: dict[str, list[Target]] = {}
    for target in targets:
        by_key.setdefault(cache_key(target.entry), []).append(target)
    ordered = sorted(by_key.items(), key=lambda kv: (-kv[1][0].entry.size, kv[1][0].final))
    return [FileJob(index=i, targets=group, key=key) for i, (key, group) in enumerate(ordered)]


def split(intervals: list[Interval], chunk: int, lead: int = 0) -> list[tuple[int, int]]:
    """Cut the missing intervals into ranges of about `chunk` bytes.

    With `lead` (the worker count) and an interval of at least 2 x lead x chunk bytes, its first
    `lead` ranges ramp up (chunk/lead, 2*chunk/lead, ... chunk): ranges started together then
    finish one after another instead of in one wave, so the hash frontier (ordered_hash) gets a
    finished range to hash early and keeps getting them, instead of idling for a whole wave and
    then facing a backlog of `lead` ranges when the download ends.
    """
    ranges = []
    for iv in intervals:
        pos = iv.start
        ramp = lead if lead > 1 and iv.length >= 2 * lead * chunk else 0
        step = 0
        while pos < iv.end:
            size = chunk * (step + 1) // ramp if step < ramp else chunk
            step += 1
            end = min(iv.end, pos + size)
            if end < iv.end and align_down(end) > pos:
                end = align_down(end)  # cuts on block boundaries: direct I/O writes whole blocks
            # Avoid a runt last range: fold anything under a quarter chunk into its neighbour.
            if iv.end - end < chunk // 4:
                end = iv.end
            ranges.append((pos, end))
            pos = end
    return ranges
