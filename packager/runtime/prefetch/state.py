"""The prefetch's shared state between processes: an exclusive lock and a small JSON state file.

Whoever fetches (the prefetch worker process, spawned by the entrypoint or by `truss-transfer-cli`
when started without the entrypoint) holds an flock on the lock file for the whole fetch, so a second fetcher waits
for the first instead of racing it on the same partial files, and then finds the state file
saying "done" for the same manifest and returns at once. The kernel drops the lock when the
holder dies, so a crashed fetch never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import TypedDict, cast

RUNNING, DONE, FAILED = "running", "done", "failed"


class PrefetchState(TypedDict, total=False):
    """The state file; every key may be missing from what read_state finds (then: {})."""

    state: str  # RUNNING | DONE | FAILED
    manifest_sha256: str
    pid: int
    error: str | None
    updated: float  # time.time()


@contextlib.contextmanager
def exclusive(lock_path: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(lock_path) or ".", exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_state(path: str, state: str, manifest_sha256: str, error: str | None = None) -> None:
    doc = PrefetchState(state=state, manifest_sha256=manifest_sha256, pid=os.getpid(), error=error,
                        updated=time.time())
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.replace(tmp, path)
    except OSError:
        # The state file only saves a re-verification; a read-only /tmp must not fail the fetch.
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_state(path: str) -> PrefetchState:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        # Written by write_state (this image's runtime); the readers only compare its values, so
        # a foreign document with other types merely never matches.
        return cast(PrefetchState, doc) if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def file_sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()
