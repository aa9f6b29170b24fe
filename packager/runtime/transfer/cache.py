"""A content-addressed blob cache shared by every container (and process) on a node.

    <cache>/blobs/<key>          complete, verified, read-only files
    <cache>/partial/<key>        the download in progress (+ .journal), owned by the lock holder
    <cache>/locks/<key>.lock     fcntl lock held while a process downloads <key>; its mtime is
                                 the blob's last use (LRU clock)

Keys are `<algorithm>-<digest>`; entries without a verifiable hash are keyed by their pinned
source identity (`src-<sha256 of kind, repo, path, resolved revision, size>`). A blob exists only
after verification (atomic rename from partial/), so its presence is proof enough. Destinations
get a hard link (no copy, no extra space); across filesystems a copy. Blobs are made read-only
because a hard-linked destination edited in place would corrupt the cache for everyone.

Why the lock file's mtime is the LRU clock: touching the blob itself would change the mtime of
every hard-linked destination, which the verified markers depend on.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
from dataclasses import dataclass

from ..manifest import Entry


def cache_key(entry: Entry) -> str:
    if entry.hash.algorithm != "none":
        return f"{entry.hash.algorithm}-{entry.hash.digest.lower()}"
    s = entry.source
    identity = "\0".join([s.kind, s.repo, s.path, entry.revision.resolved, str(entry.size)])
    return "src-" + hashlib.sha256(identity.encode()).hexdigest()


@dataclass
class BlobLock:
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def link_or_copy(src: str, final: str) -> None:
    """Place `src` at `final` atomically: hard link when possible, copy across filesystems."""
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.pack-link")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(src, tmp)
    os.replace(tmp, final)


class BlobCache:
    def __init__(self, root: str, max_bytes: int | None = None):
        self.root = os.path.abspath(root)
        self.max_bytes = max_bytes
        for sub in ("blobs", "partial", "locks"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    def blob(self, key: str) -> str:
        return os.path.join(self.root, "blobs", key)

    def partial(self, key: str) -> str:
        return os.path.join(self.root, "partial", key)

    def _lock_path(self, key: str) -> str:
        return os.path.join(self.root, "locks", key + ".lock")

    def has(self, key: str, size: int) -> bool:
        try:
            return os.stat(self.blob(key)).st_size == size
        except FileNotFoundError:
            return False

    def try_lock(self, key: str) -> BlobLock | None:
        """The download lock for `key`, or None while another process holds it."""
        fd = os.open(self._lock_path(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return BlobLock(fd)

    def touch(self, key: str) -> None:
        try:
            os.utime(self._lock_path(key))
        except FileNotFoundError:
            open(self._lock_path(key), "a").close()

    def publish(self, partial: str, key: str) -> str:
        os.chmod(partial, 0o444)
        os.replace(partial, self.blob(key))
        self.touch(key)
        return self.blob(key)

    def place(self, key: str, final: str) -> None:
        link_or_copy(self.blob(key), final)
        self.touch(key)

    def usage(self) -> int:
        total = 0
        for entry in os.scandir(os.path.join(self.root, "blobs")):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def evict(self, keep: set[str]) -> list[str]:
        """Delete least recently used blobs until the cache fits max_bytes; returns the keys.

        Blobs in use by this fetch (`keep`) or locked by another process are never removed.
        Space held by a blob still hard-linked from a destination is freed only when that
        destination goes too; it is still counted here so the cache itself stays capped.
        """
        if self.max_bytes is None:
            return []
        blobs = []
        for entry in os.scandir(os.path.join(self.root, "blobs")):
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            try:
                used = os.stat(self._lock_path(entry.name)).st_mtime_ns
            except FileNotFoundError:
                used = 0
            blobs.append((used, entry.name, size))
        total = sum(size for _, _, size in blobs)
        removed = []
        for _, key, size in sorted(blobs):
            if total <= self.max_bytes:
                break
            if key in keep:
                continue
            lock = self.try_lock(key)
            if lock is None:
                continue
            try:
                os.unlink(self.blob(key))
                total -= size
                removed.append(key)
            except FileNotFoundError:
                pass
            finally:
                lock.release()
        return removed
