"""lazy_data_resolver: what Model.__init__ receives to wait for the prefetched weights.

Truss's contract, kept: block_until_download_complete() blocks until every manifest file is
verified in place, returns "" when there is nothing to fetch, re-raises a download failure as
RuntimeError("Error occurred while fetching data: ..."), is idempotent, and a model that never
calls it while weights are declared fails its load with MISSING_COLLECTION_MESSAGE.

pack's additions: block_until_folder_complete(name) (or volume_folder=name) waits for one
volume_folder while the others keep downloading; collecting every folder that way counts as
collecting the whole manifest. Time spent blocked is recorded in the start-up timeline, which
is how the hidden download time is measured.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from ..prefetch.process import Prefetch, PrefetchFailed
from ..timeline import DownloadSummary, Timeline

log = logging.getLogger("pack.lazy_data")

# The first line is Truss's, verbatim, so log searches written for Truss still match.
MISSING_COLLECTION_MESSAGE = (
    "model_cache: Data was not collected. Missing lazy_data_resolver.block_until_download_complete().\n"
    "The weights of model_cache are fetched in the background while model.py is imported, and a "
    "file is only complete once that call returns. Fix: accept the resolver in your constructor "
    "and wait for it in __init__ or load() before reading /app/model_cache:\n"
    "\n"
    "    class Model:\n"
    "        def __init__(self, **kwargs):\n"
    "            self._lazy_data_resolver = kwargs[\"lazy_data_resolver\"]\n"
    "\n"
    "        def load(self):\n"
    "            self._lazy_data_resolver.block_until_download_complete()\n"
    "            # ... now read /app/model_cache/<volume_folder>/...\n"
)
UNCOLLECTED_WARNING_SECONDS = 20.0
T = TypeVar("T")


class LazyDataResolver:
    def __init__(self, prefetch: Prefetch, timeline: Timeline):
        self._prefetch = prefetch
        self._timeline = timeline
        self._collected = not prefetch.active
        self._folders_collected: set[str] = set()
        self._stats_logged = False
        self._lock = threading.Lock()
        if prefetch.active:
            timer = threading.Timer(UNCOLLECTED_WARNING_SECONDS, self._warn_if_uncollected)
            timer.daemon = True
            timer.start()
            atexit.register(self._warn_if_uncollected)

    # --- the user-facing API -----------------------------------------------------------------
    def block_until_download_complete(self, log_stats: bool = True, issue_collect: bool = True,
                                      *, volume_folder: str | None = None,
                                      timeout: float | None = None) -> str:
        """Block until every manifest file is in place; return the model_cache directory
        ("" when nothing is fetched). Raises RuntimeError if the download failed."""
        if volume_folder is not None:
            return self.block_until_folder_complete(volume_folder, timeout=timeout)
        if issue_collect:
            self._collected = True
        if not self._prefetch.active:
            return ""
        self._blocking(lambda: self._prefetch.wait(timeout))
        if not self._prefetch.required:
            return ""
        if log_stats:
            self._log_stats()
        return self._prefetch.paths.model_cache

    def block_until_folder_complete(self, volume_folder: str, timeout: float | None = None) -> str:
        """Block until the files of one volume_folder are in place; return its directory."""
        if not self._prefetch.active:
            raise KeyError(f"volume_folder {volume_folder!r}: this image has no weights manifest")
        path = self._blocking(lambda: self._prefetch.wait_folder(volume_folder, timeout))
        with self._lock:
            self._folders_collected.add(volume_folder)
        return path

    # --- used by the loader ------------------------------------------------------------------
    @property
    def collected(self) -> bool:
        if self._collected:
            return True
        # Waiting for every folder one by one collects the manifest too (each wait raised if
        # its folder failed), unless some entries belong to no folder.
        with self._lock:
            done = set(self._folders_collected)
        folders = set(self._prefetch.folders())
        return bool(folders) and folders <= done and not self._prefetch.has_unfoldered_entries

    def raise_if_not_collected(self) -> None:
        if self._prefetch.required and not self.collected:
            raise RuntimeError(MISSING_COLLECTION_MESSAGE)

    # --- internals ---------------------------------------------------------------------------
    def _blocking(self, wait: Callable[[], T]) -> T:
        self._timeline.block_started()
        try:
            return wait()
        except PrefetchFailed as exc:
            raise RuntimeError(f"Error occurred while fetching data: {exc}") from exc
        finally:
            self._timeline.block_ended()

    def _log_stats(self) -> None:
        with self._lock:
            if self._stats_logged:
                return
            self._stats_logged = True
        t = self._timeline
        wall, hidden = t.download_wall_seconds() or 0.0, t.hidden_download_seconds() or 0.0
        d: DownloadSummary = t.download or {}
        log.info(
            "model_cache: %d files, %.1f MiB (%.1f MiB downloaded, %d from cache) fetched in "
            "%.2f s, of which %.2f s were spent blocking (%.2f s hidden behind start-up)",
            d.get("files", 0), d.get("bytes_total", 0) / 2**20,
            d.get("bytes_downloaded", 0) / 2**20, d.get("cache_hits", 0), wall,
            t.blocked_seconds, hidden)

    def _warn_if_uncollected(self) -> None:
        try:
            if self._prefetch.active and not self.collected and self._prefetch.required:
                log.warning(MISSING_COLLECTION_MESSAGE)
        except Exception:  # noqa: BLE001, S110 - a warning hook must never raise at exit
            pass
