"""A content-addressed blob cache shared by every container (and process) on a node.

    <cache>/blobs/<key>          complete, verified, read-only files
    <cache>/partial/<key>        the download in progress (+ .journal), owned by the lock holder
    <cache>/locks/<key>.lock     fcntl lock held while a process downloads <key>; its mtime is
                                 the blob's last use (LRU clock)

Keys are `<algorithm>-<digest>`; entries without a verifiable hash are keyed by their pinned
source identity (`src-<sha256 of kind, repo, path, resolved revision, size>`). A blob exists only
after verification (atomic rename from partial/), so its presence is proof enough. Blobs are made
read-only because a linked destination edited in place would corrupt the cache for everyone.

How a destination gets its blob (never a partial or unverified file: the link is made beside the
destination and renamed over it):
* same filesystem: a hard link (no copy, no extra space);
* another filesystem (the usual volume mode: the cache on a named volume, /app in the
  container's layer) with a pin holder (`instance`, see cache_pins.py): a symlink to the blob,
  so neither a cold download nor a warm start writes the bytes a second time. The blob is then
  pinned for the instance: eviction never removes a blob pinned by a live instance (a server
  process holding its instance lock, on any container sharing the volume), and sweeps the pins
  of dead instances;
* another filesystem without a pin holder (a process that does not outlive the destination,
  e.g. truss-transfer-cli or `pack fetch` on a host): a copy, which eviction cannot break.

Why the lock file's mtime is the LRU clock: touching the blob itself would change the mtime of
every hard-linked destination, which the verified markers depend on.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from .. import cache_pins
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


CROSS_DEVICE = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP)
HARDLINK, SYMLINK, COPY = "hardlink", "symlink", "copy"


def link_or_copy(src: str, final: str, symlink_across: bool = False) -> str:
    """Place `src` at `final` atomically: hard link when possible; across filesystems a symlink
    to `src` (absolute) when `symlink_across`, else a copy. Returns how (HARDLINK/SYMLINK/COPY)."""
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.pack-link")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    how = HARDLINK
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno not in CROSS_DEVICE:
            raise
        if symlink_across:
            os.symlink(os.path.abspath(src), tmp)
            how = SYMLINK
        else:
            shutil.copyfile(src, tmp)
            how = COPY
    os.replace(tmp, final)
    return how


class BlobCache:
    def __init__(self, root: str, max_bytes: int | None = None, instance: str | None = None):
        """instance: the pin set (cache_pins.hold_instance) of the process that outlives the
        destinations; only with one are destinations on another filesystem symlinked."""
        self.root = os.path.abspath(root)
        self.max_bytes = max_bytes
        self.instance = instance
        for sub in ("blobs", "partial", "locks", cache_pins.PINS):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        if instance is not None:
            os.makedirs(cache_pins.instance_dir(self.root, instance), exist_ok=True)

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

    def pin(self, key: str) -> None:
        """Record that this instance's destinations link to `key` (before the link exists)."""
        if self.instance is not None:
            path = os.path.join(cache_pins.instance_dir(self.root, self.instance), key)
            try:  # one syscall per file in the usual case (the instance dir exists)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))

    def links_here(self, final: str) -> bool:
        """True when `final` is a symlink into this cache's blobs."""
        try:
            target = os.readlink(final)
        except OSError:
            return False
        return os.path.dirname(target) == os.path.join(self.root, "blobs")

    def place(self, key: str, final: str, locked: bool = False) -> str:
        """Link the blob at `final`; returns HARDLINK, SYMLINK or COPY. Raises
        FileNotFoundError if the blob was evicted meanwhile (the caller fetches it again).
        locked: this process holds the blob's download lock (just published it)."""
        if self.instance is None:
            how = link_or_copy(self.blob(key), final)
        else:
            with self._shared(key, locked):
                self.pin(key)
                os.stat(self.blob(key))
                how = link_or_copy(self.blob(key), final, symlink_across=True)
        self.touch(key)
        return how

    def hold(self, key: str) -> bool:
        """Pin `key` for this instance (a destination already links to it); False if the blob
        is gone. Without an instance there is nothing to pin."""
        if self.instance is None:
            return True
        with self._shared(key, False):
            self.pin(key)
            return os.path.exists(self.blob(key))

    @contextlib.contextmanager
    def _shared(self, key: str, locked: bool) -> Iterator[None]:
        """Pin and check under a shared hold of the blob's lock: eviction removes a blob only
        under the exclusive lock after checking the pins, so either it sees the pin or the
        pinner sees the blob gone."""
        if locked:
            yield
            return
        fd = os.open(self._lock_path(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def usage(self) -> int:
        total = 0
        for entry in os.scandir(os.path.join(self.root, "blobs")):
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def evict(self, keep: set[str], free_bytes: int = 0) -> list[str]:
        """Delete least recently used blobs until the cache fits max_bytes and, with free_bytes,
        until that much disk space was given back; returns the keys.

        Blobs in use by this fetch (`keep`), locked by another process, or pinned by a live
        instance (a symlinked destination depends on them) are never removed; the pins of dead
        instances are swept first. Space held by a blob still hard-linked from a destination is
        freed only when that destination goes too: it counts toward max_bytes (so the cache
        itself stays capped) but not toward free_bytes.
        """
        if self.max_bytes is None and free_bytes <= 0:
            return []
        keep = set(keep) | self.live_pins()
        blobs = []
        for entry in os.scandir(os.path.join(self.root, "blobs")):
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            try:
                used = os.stat(self._lock_path(entry.name)).st_mtime_ns
            except FileNotFoundError:
                used = 0
            blobs.append((used, entry.name, st.st_size, st.st_nlink == 1))
        total = sum(size for _, _, size, _ in blobs)
        freed = 0
        removed = []
        for _, key, size, frees in sorted(blobs):
            over_cap = self.max_bytes is not None and total > self.max_bytes
            if not over_cap and freed >= free_bytes:
                break
            if key in keep or not (over_cap or frees):
                continue
            lock = self.try_lock(key)
            if lock is None:
                continue
            try:
                if self.pinned(key):  # pinned since the scan above
                    continue
                os.unlink(self.blob(key))
                total -= size
                freed += size if frees else 0
                removed.append(key)
            except FileNotFoundError:
                pass
            finally:
                lock.release()
        return removed

    def live_pins(self) -> set[str]:
        """Keys pinned by live instances; the pin sets of dead instances are removed."""
        pins_root = os.path.join(self.root, cache_pins.PINS)
        pinned: set[str] = set()
        try:
            names = [e.name for e in os.scandir(pins_root) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return pinned
        for name in names:
            directory = cache_pins.instance_dir(self.root, name)
            if cache_pins.is_live(self.root, name):
                try:
                    pinned.update(os.listdir(directory))
                except FileNotFoundError:
                    pass
                continue
            shutil.rmtree(directory, ignore_errors=True)
            try:
                os.unlink(cache_pins.instance_lock(self.root, name))
            except FileNotFoundError:
                pass
        return pinned

    def pinned(self, key: str) -> bool:
        """True when a live instance pins `key`."""
        pins_root = os.path.join(self.root, cache_pins.PINS)
        try:
            names = [e.name for e in os.scandir(pins_root) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return False
        return any(os.path.exists(os.path.join(pins_root, name, key))
                   and cache_pins.is_live(self.root, name) for name in names)
