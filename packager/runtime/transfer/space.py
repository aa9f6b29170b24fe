"""Room for the download, checked before the first byte: fail in a second, not at 90%.

Partial files are sparse (ftruncate), so a full disk would otherwise show up as ENOSPC in the
middle of the transfer, after minutes of downloading, with partial files holding the space that
is missing. Before any request, the bytes still to be written are summed per filesystem (a file
already marked present or in the cache needs nothing; a partial file from an interrupted run
needs only what it has not allocated yet) and compared with the space free there. On the cache's
filesystem, least recently used blobs that this fetch does not use are evicted first to make room.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from .cache import BlobCache
from .errors import TransferFailed
from .job import FileJob
from .layout import marker_matches, partial_path

GiB = 1024 ** 3


@dataclass
class Need:
    where: str  # an existing directory on that filesystem, for the message
    nbytes: int = 0
    files: list[str] = field(default_factory=list)


class InsufficientSpace(TransferFailed):
    """Not enough free space for the files still to download; nothing was fetched."""

    def __init__(self, shortfalls: list[tuple[Need, int]], evicted: int = 0):
        self.shortfalls = shortfalls
        self.evicted = evicted
        super().__init__([], None)

    fix = ("free space there, mount a larger volume, or point the cache (PACK_CACHE_DIR) or the "
           "destination at a filesystem with room")

    def summary(self) -> str:
        return f"{self.problem()}\nNothing was downloaded: {self.fix}."

    def problem(self) -> str:
        lines = []
        for need, free in self.shortfalls:
            lines.append(
                f"not enough space on the filesystem of {need.where}: {_size(need.nbytes)} to "
                f"write for {len(need.files)} file{'s' if len(need.files) != 1 else ''} "
                f"(first: {need.files[0]}), {_size(free)} free")
        if self.evicted:
            lines.append(f"(after evicting {self.evicted} unused cache blobs)")
        return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / 1024 ** 2:.1f} MiB"


def _existing_dir(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _remaining(work_path: str, size: int) -> int:
    """Bytes a (possibly sparse, partly written) work file still has to allocate."""
    try:
        allocated = os.stat(work_path).st_blocks * 512
    except FileNotFoundError:
        allocated = 0
    return max(0, size - allocated)


def _downloading_elsewhere(cache: BlobCache, key: str) -> bool:
    """Another process holds the blob's lock: its space is that process's to find; this fetch
    only links the blob once it is published (two containers starting at once on one node)."""
    lock = cache.try_lock(key)
    if lock is None:
        return True
    lock.release()
    return False


def filesystem_of(directory: str) -> tuple[str, int]:
    """The nearest existing directory at or above `directory`, and its filesystem (st_dev)."""
    where = _existing_dir(directory)
    return where, os.stat(where).st_dev


def needs(jobs: list[FileJob], cache: BlobCache | None) -> dict[int, Need]:
    """Bytes still to be written, per filesystem (st_dev)."""
    out: dict[int, Need] = {}
    cache_dev = os.stat(cache.root).st_dev if cache is not None else None
    # Many files share a directory: stat each directory once.
    _filesystem = functools.lru_cache(maxsize=None)(filesystem_of)

    def add(fs: tuple[str, int], nbytes: int, name: str) -> None:
        if nbytes > 0:
            need = out.setdefault(fs[1], Need(fs[0]))
            need.nbytes += nbytes
            need.files.append(name)

    for job in jobs:
        if all(marker_matches(t.final, t.entry, t.marker_file) for t in job.targets):
            continue
        first = job.targets[0].final
        if cache is None:
            work = partial_path(first)
            add(_filesystem(os.path.dirname(work)), _remaining(work, job.size), first)
            continue
        if not cache.has(job.key, job.size) and not _downloading_elsewhere(cache, job.key):
            work = cache.partial(job.key)
            add(_filesystem(os.path.dirname(work)), _remaining(work, job.size), first)
        if cache.instance is None:  # across filesystems a destination is a copy of the blob
            for t in job.targets:
                fs = _filesystem(os.path.dirname(t.final))
                if fs[1] != cache_dev:
                    add(fs, job.size, t.final)
    return out


def free_bytes(directory: str) -> int | None:
    """Bytes free to an unprivileged writer; None where the filesystem reports no size at all
    (ramfs, some FUSE and network mounts say 0 blocks): nothing to check against there."""
    st = os.statvfs(directory)
    if st.f_blocks == 0:
        return None
    return st.f_bavail * st.f_frsize


def ensure_room(jobs: list[FileJob], cache: BlobCache | None) -> None:
    """Raise InsufficientSpace unless every filesystem has room for what is left to write."""
    evicted = 0
    short = []
    cache_dev = os.stat(cache.root).st_dev if cache is not None else None
    for dev, need in needs(jobs, cache).items():
        free = free_bytes(need.where)
        if free is None:
            continue
        if need.nbytes > free and cache is not None and dev == cache_dev:
            evicted += len(cache.evict({job.key for job in jobs}, free_bytes=need.nbytes - free))
            free = free_bytes(need.where) or 0
        if need.nbytes > free:
            short.append((need, free))
    if short:
        raise InsufficientSpace(short, evicted)
