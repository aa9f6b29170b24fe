"""The progress protocol: library code never prints, it tells a Reporter.

Methods are called from worker threads, so implementations must be thread-safe and cheap
(`advance` runs once per socket read, about once per MiB).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from .results import FetchResult, FileResult

log = logging.getLogger("packager.transfer")


class Reporter(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self, result: FileResult) -> None: ...

    def retry(self, destination: str, attempt: int, cause: str) -> None: ...

    def finish(self, result: FetchResult) -> None: ...


class NullReporter:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self, result: FileResult) -> None:
        pass

    def retry(self, destination: str, attempt: int, cause: str) -> None:
        pass

    def finish(self, result: FetchResult) -> None:
        pass


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class LogReporter:
    """Plain periodic log lines for containers and CI, where a progress bar would be noise.

    No thread of its own: `advance` emits a line when `interval` seconds have passed since the
    last one, so a stalled transfer is visible by the absence of lines plus the retry warnings.
    """

    def __init__(self, logger: logging.Logger | None = None, interval: float = 5.0):
        self._log = logger or log
        self._interval = interval
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._files = 0
        self._files_done = 0
        self._t0 = time.monotonic()
        self._last = self._t0

    def start(self, files: int, total_bytes: int) -> None:
        with self._lock:
            self._files, self._total = files, total_bytes
            self._t0 = self._last = time.monotonic()
        self._log.info("fetching %d files, %s", files, human_bytes(total_bytes))

    def advance(self, nbytes: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._done += nbytes
            if now - self._last < self._interval:
                return
            self._last = now
            done, total, elapsed = self._done, self._total, now - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 and total > done else 0.0
        pct = 100.0 * done / total if total else 100.0
        self._log.info(
            "fetched %s of %s (%.0f%%) at %s/s, ETA %.0fs, files %d/%d",
            human_bytes(done), human_bytes(total), pct, human_bytes(rate), eta,
            self._files_done, self._files,
        )

    def file_done(self, result: FileResult) -> None:
        with self._lock:
            self._files_done += 1
        if result.error:
            self._log.error("failed %s: %s", result.destination, result.error)
        else:
            self._log.debug("%s %s (%s)", result.status, result.destination, result.verification)

    def retry(self, destination: str, attempt: int, cause: str) -> None:
        self._log.warning("retrying %s (attempt %d): %s", destination, attempt, cause)

    def finish(self, result: FetchResult) -> None:
        self._log.info(
            "fetched %d files: %s downloaded in %.1fs (%s/s), %d cache hits, %d failed",
            len(result.files), human_bytes(result.bytes_downloaded), result.seconds,
            human_bytes(result.throughput()), result.cache_hits, len(result.failures),
        )
