"""Pins in the node cache: which blobs a live server's destinations depend on.

When the content cache (PACK_CACHE_DIR, a volume) and /app/model_cache are on different
filesystems, a destination is a symlink to the verified blob instead of a copy (no byte is
written twice). Such a blob must then outlive every server whose destination points at it, on
any container sharing the volume, so each server registers as an *instance*:

    <cache>/pins/<instance>.lock     flock'ed (exclusive) by the server for its whole life
    <cache>/pins/<instance>/<key>    an empty file per blob this instance symlinked

Eviction (transfer/cache.py) never removes a blob pinned by a live instance; an instance whose
lock nobody holds is dead (the kernel drops a flock with its last holder, however the process
ended) and its pins are swept. The lock is taken here, in the server process, before the
prefetch worker is spawned, so a pin can never exist without a live holder.

Standard library only and cheap: the server calls hold_instance() before spawning the worker.
"""

from __future__ import annotations

import fcntl
import os

PINS = "pins"
_held: dict[str, tuple[str, int]] = {}  # cache root -> (instance name, lock fd), process-wide


def instance_lock(root: str, name: str) -> str:
    return os.path.join(root, PINS, name + ".lock")


def instance_dir(root: str, name: str) -> str:
    return os.path.join(root, PINS, name)


def hold_instance(root: str) -> str:
    """Register this process as a live instance of the cache at `root` (idempotent per process);
    the lock is held until the process ends. Returns the instance name."""
    root = os.path.abspath(root)
    held = _held.get(root)
    if held is not None:
        return held[0]
    name = f"{os.uname().nodename}-{os.getpid()}-{os.urandom(4).hex()}"
    os.makedirs(os.path.join(root, PINS), exist_ok=True)
    fd = os.open(instance_lock(root, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # locked before its pin directory exists: never swept live
    os.makedirs(instance_dir(root, name), exist_ok=True)
    _held[root] = (name, fd)
    return name


def is_live(root: str, name: str) -> bool:
    """True while some process holds the instance's lock (this one included)."""
    held = _held.get(os.path.abspath(root))
    if held is not None and held[0] == name:
        return True
    try:
        fd = os.open(instance_lock(root, name), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's lock
    return False
